#!/usr/bin/env node
// The `ordo` command: a thin launcher for the compiled CLI in dist/. It calls
// main itself: npm runs it through a link named `ordo` (npx, node_modules/.bin).
"use strict";
require("../dist/src/cli/main.js").main(process.argv);
