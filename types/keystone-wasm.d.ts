// The package ships typings its "exports" map hides from TypeScript (TS7016): what we use of it.
declare module 'keystone-wasm' {
  export class Keystone {
    constructor(arch: number, mode: number);
    readonly handle: number;
    errNo(): number;
    close(): void;
    static strError(errNo: number): string;
  }
  export function loadKeystone(module?: Record<string, unknown>): Promise<void>;
}
