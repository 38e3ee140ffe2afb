/** `deno task test` on a fresh machine: what is missing is installed as root, or named in one line. */
import { assertEquals } from "../../support/assert.ts";
import { ensurePrerequisites, type Installer, PREREQUISITES } from "../../support/prerequisites.ts";

const absent = {
  package: "no-such-package",
  provides: "no-such-command-iot-agent",
  why: "a test of the check",
};

Deno.test("not root: one line names exactly what is missing and how to install it; nothing is installed", async () => {
  const attempts: string[][] = [];
  const installer: Installer = {
    canInstall: false,
    install: (p) => (attempts.push(p), Promise.resolve(true)),
  };
  const complaint = await ensurePrerequisites([PREREQUISITES[0], absent], installer);
  assertEquals(
    complaint,
    "tests: missing no-such-package (a test of the check): run as root to install them, or: " +
      "sudo apt-get install -y no-such-package",
  );
  assertEquals(attempts, []);
});

Deno.test("root: the missing packages are installed; what is still missing afterwards is named", async () => {
  const attempts: string[][] = [];
  const installer: Installer = {
    canInstall: true,
    install: (p) => (attempts.push(p), Promise.resolve(true)),
  };
  const complaint = await ensurePrerequisites([absent], installer);
  assertEquals(attempts, [["no-such-package"]]);
  assertEquals(complaint?.startsWith("tests: missing no-such-package"), true);
  assertEquals(await ensurePrerequisites(PREREQUISITES, installer), undefined, "this machine has them all");
  assertEquals(attempts.length, 1, "nothing installed when nothing is missing");
});
