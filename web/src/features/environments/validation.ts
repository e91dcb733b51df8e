/**
 * Client-side checks of the create-environment form. They mirror the
 * platform's rules (crates/domain: environment names, `PackageSpec`,
 * `validate_python_version`) so mistakes are caught before a request; the
 * server stays the authority and its problem details are shown as well.
 */

export type CreateEnvironmentValues = {
  name: string;
  packages: string;
  pythonVersion: string;
  criticality: string;
  experimentId: string;
  fundingSource: string;
};

export type CreateEnvironmentErrors = Partial<Record<keyof CreateEnvironmentValues, string>>;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const PACKAGE_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$/;
const SPECIFIER = /^[=<>~!][A-Za-z0-9=<>~!.*+, ]*$/;
const PYTHON = /^3\.\d{1,3}(?:\.\d{1,3})?$/;

/** One package per line; blank lines and `#` comments are ignored. */
export function packageLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter((l) => l !== '');
}

/** Why a package line is not acceptable, or undefined when it is. */
export function packageProblem(line: string): string | undefined {
  const at = line.search(/[=<>~!]/);
  const name = (at < 0 ? line : line.slice(0, at)).trim();
  const spec = at < 0 ? '' : line.slice(at).trim();
  if (!PACKAGE_NAME.test(name)) {
    if (/[[\]@/:;\\]/.test(line)) {
      return `“${line}”: only a package name with an optional version is allowed (no extras, URLs or paths).`;
    }
    return `“${name || line}” is not a valid package name (letters, digits, “-”, “_”, “.”).`;
  }
  if (spec && (spec.length > 100 || !SPECIFIER.test(spec))) {
    return `“${spec}” is not a valid version for ${name}; write it like ==1.2.3 or >=1,<2.`;
  }
  return undefined;
}

export function validateCreateEnvironment(v: CreateEnvironmentValues): CreateEnvironmentErrors {
  const errors: CreateEnvironmentErrors = {};
  const name = v.name.trim();
  if (name === '') errors.name = 'Give the environment a name.';
  else if (!NAME.test(name)) {
    errors.name =
      name.length > 64
        ? 'The name is too long: at most 64 characters.'
        : 'Use letters, digits, “-”, “_” and “.” only, starting with a letter or digit.';
  }
  const lines = packageLines(v.packages);
  const problems = lines.map(packageProblem).filter((p): p is string => p !== undefined);
  if (problems.length > 0) errors.packages = problems.join(' ');
  else {
    const seen = new Set<string>();
    for (const l of lines) {
      const n = l.split(/[=<>~!]/)[0]!.trim().toLowerCase().replace(/[-_.]+/g, '-');
      if (seen.has(n)) {
        errors.packages = `“${n}” is listed twice; keep one line per package.`;
        break;
      }
      seen.add(n);
    }
  }
  const py = v.pythonVersion.trim();
  if (py !== '' && !PYTHON.test(py)) errors.pythonVersion = 'Write the version like 3.11 or 3.11.7, or leave it empty.';
  if (v.experimentId.length > 200) errors.experimentId = 'At most 200 characters.';
  if (v.fundingSource.length > 200) errors.fundingSource = 'At most 200 characters.';
  return errors;
}
