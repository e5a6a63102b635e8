import assert from "node:assert/strict";
import { MIN_SECRET_LENGTH, REDACTED, Redactor } from "../lib/redact.ts";
import { createLogger, LOG_LEVELS } from "../lib/log.ts";

Deno.test("Redactor.redact() removes every secret it holds", async (t) => {
  await t.step("should replace each occurrence, raw and JSON-escaped", () => {
    const redactor = new Redactor();
    redactor.add('se"cr\\et/1');
    const escaped = JSON.stringify('se"cr\\et/1').slice(1, -1);
    assert.equal(
      redactor.redact(`a se"cr\\et/1 b ${escaped} c ${escaped.replaceAll("/", "\\/")}`),
      `a ${REDACTED} b ${REDACTED} c ${REDACTED}`,
    );
  });
  await t.step("should replace the longer of two overlapping secrets whole", () => {
    const redactor = new Redactor();
    redactor.add("abcd");
    redactor.add("abcdefgh");
    assert.equal(redactor.redact("xabcdefghx abcd"), `x${REDACTED}x ${REDACTED}`);
  });
  await t.step("should ignore secrets too short to redact without hiding everything", () => {
    const redactor = new Redactor();
    redactor.add("1".repeat(MIN_SECRET_LENGTH - 1));
    redactor.add(undefined);
    assert.equal(redactor.size, 0);
    assert.equal(redactor.redact("soc 11 %"), "soc 11 %");
  });
  await t.step("should treat regular expression characters literally", () => {
    const redactor = new Redactor();
    redactor.add("a.b*c+");
    assert.equal(redactor.redact("a.b*c+ axbbc"), `${REDACTED} axbbc`);
  });
  await t.step("should forget a deleted secret", () => {
    const redactor = new Redactor();
    redactor.add("old-key-1234");
    redactor.delete("old-key-1234");
    assert.equal(redactor.redact("old-key-1234"), "old-key-1234");
  });
});

Deno.test("createLogger() redacts every line at every level", () => {
  const lines: string[] = [];
  const log = createLogger("debug", (line) => lines.push(line));
  log.redactor.add("a1b2c3d4e5f6");
  for (const level of LOG_LEVELS) log[level](`${level} with a1b2c3d4e5f6`);
  assert.deepEqual(lines, LOG_LEVELS.map((level) => `${level}: ${level} with ${REDACTED}`));
});

Deno.test("createLogger() shares a redactor it is given", () => {
  const redactor = new Redactor();
  const lines: string[] = [];
  const log = createLogger("info", (line) => lines.push(line), { redactor });
  redactor.add("mqtt-secret");
  log.info("broker said mqtt-secret");
  assert.equal(log.redactor, redactor);
  assert.deepEqual(lines, [`info: broker said ${REDACTED}`]);
});
