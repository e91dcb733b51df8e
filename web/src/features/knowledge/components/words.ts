/** Plain words for what the knowledge base redacted (kinds as the platform names them). */
const KINDS: Record<string, [string, string]> = {
  email: ['e-mail address', 'e-mail addresses'],
  phone: ['phone number', 'phone numbers'],
  aws_access_key_id: ['AWS access key id', 'AWS access key ids'],
  aws_secret_access_key: ['AWS secret key', 'AWS secret keys'],
  github_token: ['GitHub token', 'GitHub tokens'],
  slack_token: ['Slack token', 'Slack tokens'],
  openai_key: ['OpenAI key', 'OpenAI keys'],
  private_key: ['private key', 'private keys'],
  bearer_token: ['bearer token', 'bearer tokens'],
  jwt: ['JSON web token', 'JSON web tokens'],
  connection_string: ['database connection string', 'database connection strings'],
  url_secret: ['secret in a URL', 'secrets in URLs'],
  password: ['password in code', 'passwords in code'],
  token: ['token', 'tokens'],
  api_key: ['API key', 'API keys'],
  secret: ['secret', 'secrets'],
  unscannable: ['unreadable part (left out)', 'unreadable parts (left out)'],
};

/** "2 e-mail addresses", "1 AWS secret key". */
export function redactionWords(kind: string, n: number): string {
  const [one, many] = KINDS[kind] ?? [kind.replace(/_/g, ' '), kind.replace(/_/g, ' ')];
  return `${n} ${n === 1 ? one : many}`;
}

/** The redaction counts, largest first, without zeros. */
export function redactionList(r: Record<string, number>): { kind: string; words: string }[] {
  return Object.entries(r)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([kind, n]) => ({ kind, words: redactionWords(kind, n) }));
}
