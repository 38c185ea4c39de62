// SPDX-License-Identifier: GPL-2.0-or-later
/* ftrace-sim: a CPU-emulated simulator of Linux x86-64 dynamic ftrace. */
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
