declare module 'asl-validator' {
  const validator: (definition: unknown) => Promise<{ isValid: boolean; errors: unknown[] }> | { isValid: boolean; errors: unknown[] };
  export default validator;
}
