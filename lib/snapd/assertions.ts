/**
 * snapd's assertion text format: headers, a blank line, an optional body of `body-length` bytes followed by a
 * blank line, then the signature. Assertions in a stream are separated by a blank line.
 */

/** One decoded assertion. */
export interface Assertion {
  /** The `type` header. */
  type: string;
  /** Every header; multi-line values joined with `\n`, their indentation removed. */
  headers: Record<string, string>;
  /** The body (empty when `body-length` is absent or 0). */
  body: string;
  /** The assertion's exact text (content and signature), ending with exactly one `\n`. */
  text: string;
}

const LF = 0x0a;

function indexOfBlankLine(bytes: Uint8Array, from: number): number {
  for (let i = from; i < bytes.length - 1; i++) {
    if (bytes[i] === LF && bytes[i + 1] === LF) return i;
  }
  return -1;
}

/**
 * Decodes an assertion stream.
 * @throws {SyntaxError} when the stream is not in assertion format.
 */
export function parseAssertions(stream: string | Uint8Array): Assertion[] {
  const bytes = typeof stream === "string" ? new TextEncoder().encode(stream) : stream;
  const decoder = new TextDecoder();
  const out: Assertion[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    while (pos < bytes.length && bytes[pos] === LF) pos++;
    if (pos >= bytes.length) break;
    const start = pos;
    const headersEnd = indexOfBlankLine(bytes, start);
    if (headersEnd < 0) throw new SyntaxError("assertion without a signature");
    const headers = parseHeaders(decoder.decode(bytes.subarray(start, headersEnd)));
    if (!headers.type) throw new SyntaxError('assertion without a "type" header');
    let cursor = headersEnd + 2;
    let body = "";
    const bodyLength = Number(headers["body-length"] ?? "0");
    if (!Number.isInteger(bodyLength) || bodyLength < 0) throw new SyntaxError("invalid body-length header");
    if (bodyLength > 0) {
      body = decoder.decode(bytes.subarray(cursor, cursor + bodyLength));
      cursor += bodyLength;
      if (bytes[cursor] !== LF || bytes[cursor + 1] !== LF) {
        throw new SyntaxError("body not followed by a blank line");
      }
      cursor += 2;
    }
    const signatureEnd = indexOfBlankLine(bytes, cursor);
    const end = signatureEnd < 0 ? bytes.length : signatureEnd;
    if (end <= cursor) throw new SyntaxError(`${headers.type} assertion without a signature`);
    const text = decoder.decode(bytes.subarray(start, end)).replace(/\n*$/, "\n");
    out.push({ type: headers.type, headers, body, text });
    pos = signatureEnd < 0 ? bytes.length : signatureEnd + 2;
  }
  return out;
}

function parseHeaders(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  let current: string | undefined;
  let continuation: string[] = [];
  const finish = () => {
    if (current !== undefined && continuation.length > 0) headers[current] = dedent(continuation);
    continuation = [];
  };
  for (const line of block.split("\n")) {
    if (line.startsWith(" ")) {
      if (current === undefined) throw new SyntaxError("indented line before any header");
      continuation.push(line);
      continue;
    }
    finish();
    const colon = line.indexOf(":");
    if (colon <= 0) throw new SyntaxError(`invalid header line "${line.slice(0, 40)}"`);
    current = line.slice(0, colon);
    headers[current] = line.slice(colon + 1).trim();
  }
  finish();
  return headers;
}

function dedent(lines: string[]): string {
  const indent = Math.min(...lines.map((line) => line.length - line.trimStart().length));
  return lines.map((line) => line.slice(indent)).join("\n");
}
