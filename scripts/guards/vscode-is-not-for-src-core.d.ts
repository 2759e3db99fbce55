// src/core must not import vscode (it runs in the worker process and the CLI, where there is no VS Code).
// src/core/tsconfig.json maps "vscode" to this file, which is outside that project: the compiler refuses the import.
export {};
