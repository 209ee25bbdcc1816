/** Slot and publication names for a flow: lower case, digits and `_`, at most 63 bytes (NAMEDATALEN). */
export function slotName(flow: string): string {
  return `ferry_${flow.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

export const publicationName = slotName;

export const HEARTBEAT_PREFIX = 'ferry_heartbeat';
