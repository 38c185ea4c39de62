// SPDX-License-Identifier: GPL-2.0-or-later
// Loaded with --import into a benchmarked child: reports its peak RSS on stderr as it exits.
process.on('exit', () => process.stderr.write(`\nftrace-sim-bench maxrss_kb=${process.resourceUsage().maxRSS}\n`));
