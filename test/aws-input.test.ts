import { describe, expect, it } from 'vitest';
import { executionInput } from '../src/cli/aws-input.js';

describe('ferry aws start: the execution input made from a config', () => {
  it('keeps the config, points the endpoints at the deployment secrets, and drops local state', () => {
    const { input, notes } = executionInput({
      name: 'shop',
      source: { url: 'postgres://u:${PW}@h/db' },
      target: { host: 't', onExistingRows: 'truncate' },
      include: ['shop.*'],
      mode: 'snapshot+cdc',
      state: { path: '.ferry/x.db' },
    });
    expect(input).toEqual({
      name: 'shop',
      source: { url: '${FERRY_SOURCE_URL}' },
      target: { url: '${FERRY_TARGET_URL}', onExistingRows: 'truncate' },
      include: ['shop.*'],
      mode: 'snapshot+cdc',
    });
    expect(notes.join('\n')).toMatch(/SourceUrl[\s\S]*TargetUrl[\s\S]*DynamoDB/);
    // No password from the file reaches the input (it would show in the execution history).
    expect(JSON.stringify(input)).not.toContain('${PW}');
  });

  it('rejects a typo before anything is started', () => {
    expect(() => executionInput({ name: 'x', includ: ['x.y'] })).toThrow(/unknown field `includ`/);
    expect(() => executionInput({ include: ['x.y'] })).toThrow(/name: on AWS a flow needs a `name`/);
  });
});
