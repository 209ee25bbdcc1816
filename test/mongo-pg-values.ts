/** Values shared by the PostgreSQL → MongoDB tests (test/mongo-pg-*.test.ts). */
export const OID = '65f0a1b2c3d4e5f601234567';
/** jsonb values whose keys spell Extended JSON wrappers, `$`-prefixed or dotted keys, nesting, `__proto__`. */
export const DOLLAR_JSONB = [
  `{"$oid": "${OID}"}`,
  '{"$date": "2024-01-01T00:00:00Z"}',
  '{"$date": {"$numberLong": "1"}}',
  '{"$numberLong": "5"}',
  '{"$numberInt": "5"}',
  '{"$numberDouble": "NaN"}',
  '{"$numberDecimal": "1.5"}',
  '{"$binary": {"base64": "AA==", "subType": "00"}}',
  '{"$uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}',
  '{"$regularExpression": {"pattern": "a", "options": ""}}',
  '{"$regex": "a", "$options": "i"}',
  '{"$ref": "things", "$id": 1}',
  '{"$id": 1, "$ref": "things", "$db": "d", "x": 2}',
  '{"$undefined": true}',
  '{"$minKey": 1}',
  '{"$maxKey": 1}',
  '{"$timestamp": {"t": 1, "i": 2}}',
  '{"$code": "f()", "$scope": {"$oid": "x"}}',
  '{"$symbol": "s"}',
  '{"$dbPointer": {"$ref": "a", "$id": {"$oid": "' + OID + '"}}}',
  '{"$inc": {"n": 1}, "$set": {"a.b": 2}}',
  '{"a.b": 1, "c": {"d.e": {"$oid": "' + OID + '"}}}',
  '{"k": [{"$oid": "' + OID + '"}, {"deep": {"deeper": [{"$date": "2024-01-01T00:00:00Z"}]}}], "n": 1.5}',
  `[{"$oid": "${OID}"}, {"$numberLong": "9"}]`,
  '{"__proto__": {"$oid": "' + OID + '"}, "constructor": 1, "toString": "x"}',
  '"$oid"',
  '{"$": 1, "$$": {"$$$": null}}',
  '{}',
];

