/**
 * Tests for src/check/history.ts: parseHistory reads Elle's JSON lines and
 * names the line of the first malformed one.
 */
import { strict as assert } from "node:assert";
import { CheckError, parseHistory } from "../../src/check";

function parseError(text: string): CheckError {
  try {
    parseHistory(text);
  } catch (err) {
    assert.ok(err instanceof CheckError);
    return err;
  }
  assert.fail("expected a CheckError");
}

describe("parseHistory", () => {
  it("reads invoke and ok lines, skipping blank lines, keeping time", () => {
    const ops = parseHistory(
      '{"index": 0, "process": 3, "type": "invoke", "f": "txn", "value": [["append", 7, 12], ["r", 7, null]], "time": 5}\n' +
        "\n" +
        '{"index": 1, "process": 3, "type": "ok", "f": "txn", "value": [["append", 7, 12], ["r", 7, [1, 5, 12]]]}\r\n',
    );
    assert.equal(ops.length, 2);
    assert.deepEqual(ops[1].value, [
      ["append", 7, 12],
      ["r", 7, [1, 5, 12]],
    ]);
    assert.equal(ops[0].time, 5);
    assert.equal(ops[1].time, undefined);
  });

  it("accepts a null value on fail/info and ignores the value of other functions", () => {
    const ops = parseHistory(
      '{"index": 0, "process": 1, "type": "info", "f": "txn", "value": null}\n' +
        '{"index": 1, "process": "nemesis", "type": "info", "f": "kill", "value": {"n": 1}}\n',
    );
    assert.equal(ops[0].value, null);
    assert.equal(ops[1].value, null);
  });

  const bad: [string, string, RegExp][] = [
    ["not JSON", "{nope", /line 2: not valid JSON/],
    ["an array", "[1, 2]", /line 2: not a JSON object/],
    [
      "a bad type",
      '{"index": 1, "process": 1, "type": "done", "f": "txn", "value": []}',
      /line 2: type must be/,
    ],
    [
      "a negative index",
      '{"index": -1, "process": 1, "type": "invoke", "f": "txn", "value": []}',
      /line 2: index/,
    ],
    [
      "a missing process",
      '{"index": 1, "type": "invoke", "f": "txn", "value": []}',
      /line 2: process/,
    ],
    [
      "an unknown micro-op",
      '{"index": 1, "process": 1, "type": "invoke", "f": "txn", "value": [["w", 1, 2]]}',
      /line 2: unknown micro-op "w"/,
    ],
    [
      "an ok read without its list",
      '{"index": 1, "process": 1, "type": "ok", "f": "txn", "value": [["r", 1, null]]}',
      /line 2: a read in an ok completion/,
    ],
    [
      "an ok without value",
      '{"index": 1, "process": 1, "type": "ok", "f": "txn", "value": null}',
      /line 2: an ok txn must carry/,
    ],
    [
      "a read list of objects",
      '{"index": 1, "process": 1, "type": "ok", "f": "txn", "value": [["r", 1, [{}]]]}',
      /line 2: a read list's elements/,
    ],
    [
      "a short micro-op",
      '{"index": 1, "process": 1, "type": "invoke", "f": "txn", "value": [["append", 1]]}',
      /line 2: a micro-op must be/,
    ],
    [
      "a string time",
      '{"index": 1, "process": 1, "type": "invoke", "f": "txn", "value": [], "time": "x"}',
      /line 2: time/,
    ],
  ];
  for (const [what, line, message] of bad) {
    it(`rejects ${what} with its line number`, () => {
      const first =
        '{"index": 0, "process": 0, "type": "invoke", "f": "txn", "value": [["append", 1, 1]]}';
      const err = parseError(`${first}\n${line}\n${first}\n`);
      assert.equal(err.code, "malformed_line");
      assert.equal(err.line, 2);
      assert.match(err.message, message);
    });
  }
});
