/** Vite `?raw` imports: the file's text, bytes unchanged (BOM and CRLF kept). */
declare module "*?raw" {
  const text: string;
  export default text;
}
