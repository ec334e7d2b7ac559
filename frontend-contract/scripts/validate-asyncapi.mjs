// Validates an AsyncAPI document with the AsyncAPI Initiative's own parser (npm @asyncapi/parser):
// the specification's JSON Schema, its semantic rules and the bindings' schemas. Prints every
// diagnostic; exits 1 when any is an error (severity 0).
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const path = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(path, "utf8"), { source: path });
const severities = ["error", "warning", "information", "hint"];
for (const d of diagnostics) {
  console.log(`${severities[d.severity] ?? d.severity}: ${d.message} at ${d.path.join(".")}`);
}
const errors = diagnostics.filter((d) => d.severity === 0);
if (errors.length > 0 || document === undefined) {
  console.error(`${path}: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(`${path}: valid AsyncAPI ${document.version()} with ${document.allMessages().length} messages`);
