/**
 * A test certificate authority issuing real X.509 certificates (RSA-2048, SHA-256): broker server certificates,
 * DMS and device client certificates, and the organisation certificate the identity service hands out.
 */
import forge from "node-forge";
import { generateKeyPairSync } from "node:crypto";
import { recordSecret } from "./test_log.ts";

/** A certificate and its PKCS#1 private key, PEM. */
export interface Issued {
  certPem: string;
  keyPem: string;
}

/** Options of {@link TestCA.issue}. */
export interface IssueOptions {
  organization?: string;
  dns?: string[];
  ips?: string[];
  /** @default now − 1 h */
  notBefore?: Date;
  /** @default now + 10 years */
  notAfter?: Date;
  /** Issue a CA certificate (e.g. an organisation certificate). */
  isCA?: boolean;
}

function rsaKey(): forge.pki.rsa.PrivateKey {
  const { privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return forge.pki.privateKeyFromPem(privateKey);
}

let serialCounter = 1;

/** A self-signed root that issues certificates. */
export class TestCA {
  private constructor(
    readonly name: string,
    private readonly cert: forge.pki.Certificate,
    private readonly key: forge.pki.rsa.PrivateKey,
  ) {}

  /** The CA certificate, PEM. */
  get certPem(): string {
    return forge.pki.certificateToPem(this.cert);
  }

  /** Creates a new root CA. */
  static create(name = "iot-agent test CA"): TestCA {
    const key = rsaKey();
    recordSecret(forge.pki.privateKeyToPem(key));
    const cert = build(name, key, { isCA: true }, undefined);
    return new TestCA(name, cert, key);
  }

  /** A self-signed leaf certificate (not a CA): what a broker set up by hand often presents. */
  static selfSigned(commonName: string, options: IssueOptions = {}): Issued {
    const key = rsaKey();
    recordSecret(forge.pki.privateKeyToPem(key));
    const cert = build(commonName, key, options, undefined);
    return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(key) };
  }

  /** A certificate revocation list of this CA naming `revoked` (PEM), made with openssl. */
  async crl(revoked: Issued[]): Promise<string> {
    const dir = await Deno.makeTempDir({ prefix: "test-ca-crl-" });
    try {
      const stamp = (date: Date) => date.toISOString().replace(/[-:T]/g, "").slice(2, 14) + "Z";
      const lines = revoked.map((issued) => {
        const cert = forge.pki.certificateFromPem(issued.certPem);
        return [
          "R",
          stamp(cert.validity.notAfter),
          stamp(new Date()),
          cert.serialNumber.toUpperCase(),
          "unknown",
        ]
          .join("\t") + "\t/CN=" + cert.subject.getField("CN").value;
      });
      await Deno.writeTextFile(`${dir}/index.txt`, lines.join("\n") + (lines.length ? "\n" : ""));
      await Deno.writeTextFile(`${dir}/crlnumber`, "01\n");
      await Deno.writeTextFile(`${dir}/ca.crt`, this.certPem);
      await Deno.writeTextFile(`${dir}/ca.key`, forge.pki.privateKeyToPem(this.key), { mode: 0o600 });
      await Deno.writeTextFile(
        `${dir}/openssl.cnf`,
        `[ca]\ndefault_ca = test\n[test]\ndatabase = ${dir}/index.txt\ncrlnumber = ${dir}/crlnumber\n` +
          "default_md = sha256\ndefault_crl_days = 30\n",
      );
      const output = await new Deno.Command("openssl", {
        args: [
          "ca",
          "-gencrl",
          "-config",
          `${dir}/openssl.cnf`,
          "-keyfile",
          `${dir}/ca.key`,
          "-cert",
          `${dir}/ca.crt`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!output.success) throw new Error(`openssl ca -gencrl: ${new TextDecoder().decode(output.stderr)}`);
      return new TextDecoder().decode(output.stdout);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }

  /** Issues a certificate with `commonName`; client and server usage both allowed. */
  issue(commonName: string, options: IssueOptions = {}): Issued {
    const key = rsaKey();
    recordSecret(forge.pki.privateKeyToPem(key));
    const cert = build(commonName, key, options, { cert: this.cert, key: this.key });
    return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(key) };
  }
}

function build(
  commonName: string,
  key: forge.pki.rsa.PrivateKey,
  options: IssueOptions,
  issuer: { cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey } | undefined,
): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = (0x1000 + serialCounter++).toString(16);
  cert.validity.notBefore = options.notBefore ?? new Date(Date.now() - 3_600_000);
  cert.validity.notAfter = options.notAfter ?? new Date(Date.now() + 10 * 365 * 86_400_000);
  const subject = [{ name: "commonName", value: commonName }];
  if (options.organization) subject.push({ name: "organizationName", value: options.organization });
  cert.setSubject(subject);
  cert.setIssuer(issuer ? issuer.cert.subject.attributes : subject);
  const extensions: Record<string, unknown>[] = [{ name: "subjectKeyIdentifier" }];
  if (options.isCA) {
    extensions.push({ name: "basicConstraints", cA: true }, {
      name: "keyUsage",
      keyCertSign: true,
      cRLSign: true,
    });
  } else {
    extensions.push(
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true, clientAuth: true },
    );
  }
  const altNames = [
    ...(options.dns ?? []).map((value) => ({ type: 2, value })),
    ...(options.ips ?? []).map((ip) => ({ type: 7, ip })),
  ];
  if (altNames.length > 0) extensions.push({ name: "subjectAltName", altNames });
  cert.setExtensions(extensions);
  cert.sign(issuer?.key ?? key, forge.md.sha256.create());
  return cert;
}
