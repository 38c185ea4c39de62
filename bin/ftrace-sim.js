#!/usr/bin/env node
// SPDX-License-Identifier: GPL-2.0-or-later
// The installed command: runs the TypeScript CLI through tsx's loader.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
