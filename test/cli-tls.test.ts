/** `ssl: verify-full` with `sslRootCert`: the server's certificate is checked against the given CA. */
import { execFileSync } from 'node:child_process';
import { chownSync, chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../src/embedded/cluster.js';
import { ferry, writeConfig } from './support/ferry-cli.js';

const openssl = (dir: string, ...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });

function makeCertificates(dir: string): void {
  openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Ferry test CA');
  openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName = IP:127.0.0.1, DNS:localhost\n');
  openssl(dir, 'x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext');
  openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.pem', '-days', '2', '-subj', '/CN=Some other CA');
}

describe.skipIf(process.platform !== 'linux')('TLS to the databases', () => {
  const clusters: Cluster[] = [];
  let dir = '';
  beforeAll(async () => {
    clusters.push(await startCluster()); // the target; as root this also creates the `postgres` user
    dir = mkdtempSync(join(tmpdir(), 'ferry-tls-'));
    chmodSync(dir, 0o755);
    makeCertificates(dir);
    // PostgreSQL wants its key private to the user it runs as.
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      for (const f of ['server.key', 'server.pem']) chownSync(join(dir, f), uid, gid);
    }
    chmodSync(join(dir, 'server.key'), 0o600);
    clusters.push(await startCluster({ settings: { ssl: 'on', ssl_cert_file: join(dir, 'server.pem'), ssl_key_file: join(dir, 'server.key') } }));
    await clusters[1]!.createDatabase('tls');
    await clusters[0]!.createDatabase('plain');
    const c = new pg.Client({ connectionString: clusters[1]!.urlFor('tls'), ssl: { rejectUnauthorized: false } });
    await c.connect();
    await c.query('CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t VALUES (1)');
    // The server does speak TLS: this very session is encrypted.
    expect((await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl).toBe(true);
    await c.end();
  });
  afterAll(async () => {
    await Promise.allSettled(clusters.map((c) => c.stop()));
  });

  const config = (source: Record<string, unknown>) =>
    writeConfig({ source: { url: clusters[1]!.urlFor('tls'), ...source }, target: { url: clusters[0]!.urlFor('plain') } });

  it('connects when the certificate is signed by the given CA', async () => {
    const r = await ferry(['plan', config({ ssl: 'verify-full', sslRootCert: join(dir, 'ca.pem') })]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('1 table(s)');
  });

  it('refuses a certificate signed by another CA, or by none the system trusts', async () => {
    const [other, system] = await Promise.all([
      ferry(['plan', config({ ssl: 'verify-full', sslRootCert: join(dir, 'other.pem') })]),
      ferry(['plan', config({ ssl: 'verify-full' })]),
    ]);
    for (const r of [other, system]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/source postgres@127\.0\.0\.1:\d+\/tls/);
      expect(r.stderr).toMatch(/certificate/i);
    }
  });

  it('says what is wrong with the TLS settings themselves', async () => {
    const [noVerify, missing] = await Promise.all([
      ferry(['plan', config({ ssl: 'require', sslRootCert: join(dir, 'ca.pem') })]),
      ferry(['plan', config({ ssl: 'verify-full', sslRootCert: join(dir, 'nope.pem') })]),
    ]);
    expect(noVerify.code).toBe(1);
    expect(noVerify.stderr).toContain('source.sslRootCert is set but source.ssl is "require"');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`source.sslRootCert: cannot read ${join(dir, 'nope.pem')}: ENOENT`);
  });
});
