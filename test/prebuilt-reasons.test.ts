// The one-line reasons lib/backend/native.ts gives when this system cannot use the prebuilt Linux
// binary (built for glibc >= 2.28): musl (Alpine) and an older glibc are named as the cause, with
// the way out, instead of the dynamic loader's symptom. (scripts/pack-check.sh checks the reason a
// consumer sees when the tarball has no binary for its platform.)
import { describe, expect, test } from 'vitest';
import { prebuiltMismatch } from '../lib/backend/native.js';

describe('prebuiltMismatch', () => {
  test('no glibc (musl): says so, the glibc it needs, and how to build from source', () => {
    const why = prebuiltMismatch('linux', undefined);
    expect(why).toMatch(/not glibc \(musl/);
    expect(why).toContain('glibc >= 2.28');
    expect(why).toContain('npm rebuild qkv');
    expect(why).not.toContain('\n');
  });

  test.each(['2.17', '2.27', '1.9'])('glibc %s: older than 2.28', (glibc) => {
    const why = prebuiltMismatch('linux', glibc);
    expect(why).toContain(`glibc ${glibc} is older than the 2.28`);
    expect(why).toContain('npm rebuild qkv');
  });

  test.each(['2.28', '2.31', '2.36', '2.100', '3.0'])('glibc %s: no mismatch to report', (glibc) => {
    expect(prebuiltMismatch('linux', glibc)).toBeNull();
  });

  test('off Linux: nothing about glibc', () => {
    expect(prebuiltMismatch('darwin', undefined)).toBeNull();
    expect(prebuiltMismatch('win32', undefined)).toBeNull();
  });
});
