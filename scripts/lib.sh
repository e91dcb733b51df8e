# Shared by scripts/run and scripts/test: idempotent installs of what the
# platform needs on a fresh Debian machine. Source it; do not run it.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/westtek/target}"
export WESTTEK_TOOLS_DIR="${WESTTEK_TOOLS_DIR:-$HOME/.cache/westtek/tools}"
export UV_PYTHON_DOWNLOADS=never

# say MSG : starts a phase: prints the clock, the time since the test command
# started, and how long the previous phase took (CI logs show where time goes).
export WESTTEK_T0="${WESTTEK_T0:-$(date +%s)}"
_westtek_phase=""
_westtek_phase_start=$(date +%s)
say() {
  local now
  now=$(date +%s)
  if [ -n "$_westtek_phase" ]; then
    printf '\033[1m    (%s: %ds)\033[0m\n' "$_westtek_phase" $((now - _westtek_phase_start)) >&2
  fi
  _westtek_phase="$*"
  _westtek_phase_start=$now
  printf '\033[1m==> [%s, +%ds] %s\033[0m\n' "$(date +%H:%M:%S)" $((now - WESTTEK_T0)) "$*" >&2
}

# apt_install PKG... : installs Debian packages that are missing.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]} (apt)"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ensure_uv : uv on PATH (a private venv under the tools dir when missing).
ensure_uv() {
  mkdir -p "$WESTTEK_TOOLS_DIR/bin"
  export PATH="$WESTTEK_TOOLS_DIR/bin:$PATH"
  if command -v uv >/dev/null 2>&1; then return 0; fi
  say "installing uv into $WESTTEK_TOOLS_DIR (pip)"
  python3 -m venv "$WESTTEK_TOOLS_DIR/uv-venv"
  "$WESTTEK_TOOLS_DIR/uv-venv/bin/pip" install -q 'uv>=0.5'
  ln -sf "$WESTTEK_TOOLS_DIR/uv-venv/bin/uv" "$WESTTEK_TOOLS_DIR/bin/uv"
}

# ensure_sandbox : bubblewrap (bwrap), which confines every notebook, and
# util-linux's prlimit/setpriv (present on every Debian).
ensure_sandbox() {
  command -v bwrap >/dev/null 2>&1 || apt_install bubblewrap
}

# ensure_python : a CPython 3 the environments can be built from.
ensure_python() {
  if ! command -v python3 >/dev/null 2>&1; then
    apt_install python3 python3-venv
  fi
  python3 -c 'import venv' 2>/dev/null || apt_install python3-venv
}

# ensure_moto : moto's server (AWS services emulated over real HTTP) for the
# AWS adapters' tests, in a private venv (PyPI).
ensure_moto() {
  local venv="$WESTTEK_TOOLS_DIR/moto-venv"
  [ -x "$venv/bin/moto_server" ] && return 0
  say "installing moto[server] into $venv (uv)"
  [ -x "$venv/bin/python" ] || uv venv --clear -q "$venv"
  uv pip install -q --python "$venv/bin/python" 'moto[server]>=5.1,<6'
}

# ensure_smtpd : a real SMTP server for the alert tests (aiosmtpd, PyPI) in
# a private venv; the tests also install it on first use when missing.
ensure_smtpd() {
  local venv="$WESTTEK_TOOLS_DIR/smtp-venv"
  "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null && return 0
  say "installing aiosmtpd into $venv (uv)"
  [ -x "$venv/bin/python" ] || uv venv --clear -q "$venv"
  uv pip install -q --python "$venv/bin/python" aiosmtpd
}
