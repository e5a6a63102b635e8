import { equal, match } from "node:assert/strict";
import { MAX_TOPIC_BYTES, topicProblem } from "../lib/mqtt/topics.ts";
import { quote } from "../lib/mqtt/_quote.ts";

Deno.test("topicProblem()", async (t) => {
  await t.step("should accept what brokers accept, any script and emoji included", () => {
    for (
      const topic of [
        "ess/home/statistics/load_power",
        "ess/common/BATT/safty_soc",
        "ess/home/Überschuss/€",
        "ess/home/🔋",
        "/ess/control/active",
        "a".repeat(MAX_TOPIC_BYTES),
      ]
    ) equal(topicProblem(topic), undefined, topic.slice(0, 40));
  });

  await t.step("should refuse every code point mosquitto refuses, naming it", () => {
    const cases: [string, RegExp][] = [
      ["\u0000", /control character U\+0000/],
      ["\u001f", /control character U\+001F/],
      ["\u007f", /control character U\+007F/],
      ["\u0085", /control character U\+0085/],
      ["\u009f", /control character U\+009F/],
      ["\ud800", /lone surrogate U\+D800/],
      ["\udfff", /lone surrogate U\+DFFF/],
      ["\ufdd0", /U\+FDD0, which is not a character/],
      ["\ufffe", /U\+FFFE, which is not a character/],
      ["\uffff", /U\+FFFF, which is not a character/],
      ["\u{1ffff}", /U\+1FFFF, which is not a character/],
    ];
    for (const [char, why] of cases) match(topicProblem(`ess/a${char}b`)!, why, why.source);
  });

  await t.step("should refuse wildcards in a topic but not in a filter, and empty topics", () => {
    match(topicProblem("ess/control/#")!, /wildcards/);
    match(topicProblem("ess/+/x")!, /wildcards/);
    equal(topicProblem("ess/+/x", { filter: true }), undefined);
    equal(topicProblem(""), "it is empty");
  });

  await t.step("should count UTF-8 bytes, not characters, against the 65,535 limit", () => {
    equal(topicProblem("ä".repeat(32_767)), undefined, "65,534 bytes");
    equal(topicProblem("ä".repeat(32_768)), "it is 65,536 bytes long, more than MQTT's 65,535");
    equal(
      topicProblem("a".repeat(MAX_TOPIC_BYTES + 1)),
      "it is 65,536 bytes long, more than MQTT's 65,535",
    );
  });
});

Deno.test("quote()", async (t) => {
  await t.step("should escape what would break or forge a log line", () => {
    equal(quote('say "hi"\r\nwarning: forged'), '"say \\"hi\\"\\r\\nwarning: forged"');
    equal(quote("\u2028\u009b\ufffe"), '"\\u2028\\u009b\\ufffe"');
    // A right-to-left override in a payload would show the rest of the line reversed.
    equal(quote("on\u202eno\u2066"), '"on\\u202eno\\u2066"');
  });

  await t.step("should cut at 100 characters and give the full length", () => {
    const line = quote("é".repeat(300_000));
    equal(line, `"${"é".repeat(100)}"… (300,000 characters)`);
    equal(quote("x".repeat(100)), `"${"x".repeat(100)}"`);
  });
});
