// Lets TypeScript accept `import "./style.css"` (Vite bundles it).
/// <reference types="vite/client" />
