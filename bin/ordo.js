#!/usr/bin/env node
// The `ordo` command: a thin launcher for the compiled CLI in dist/.
"use strict";
require("../dist/src/cli/main.js");
