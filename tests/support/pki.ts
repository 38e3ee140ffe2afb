/**
 * A test certificate authority issuing real X.509 certificates (RSA-2048, SHA-256): broker server certificates,
 * DMS and device client certificates, and the organisation certificate the identity service hands out.
 */
import forge from "node-forge";
import { generateKeyPairSync } from "node:crypto";

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
    const cert = build(name, key, { isCA: true }, undefined);
    return new TestCA(name, cert, key);
  }

  /** Issues a certificate with `commonName`; client and server usage both allowed. */
  issue(commonName: string, options: IssueOptions = {}): Issued {
    const key = rsaKey();
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
