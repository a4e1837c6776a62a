// Bun bundles CSS imported from TSX; TypeScript only needs to know the import exists.
declare module "*.css";
