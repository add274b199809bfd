// Bun imports these as strings (`with { type: 'text' }`) and embeds them in the executable.
declare module '*.sql' {
  const text: string;
  export default text;
}
