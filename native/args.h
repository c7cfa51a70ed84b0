// Reading N-API arguments defensively. The TypeScript layer has validated everything already;
// these checks exist because the binding is reachable directly, and they guarantee that no
// kernel ever touches memory past the end of a buffer. Messages follow lib/validate.ts:
// "Expected <what> for <name> but received <actual>", and for lengths
// "Expected <name>.length to be <formula> but received <length>". The only code that reads Napi values.
#pragma once

#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <string>

namespace qkv {

// An integer-valued number in [lo, hi].
int64_t ExpectInt(const Napi::Value& v, const char* name, int64_t lo, int64_t hi);

// A dimension: an integer in [1, 2^31 - 1].
int64_t ExpectDim(const Napi::Value& v, const char* name);

// A finite number.
double ExpectFinite(const Napi::Value& v, const char* name);

// Product of non-negative dims; a RangeError when it exceeds 2^40 elements (far beyond any typed
// array, and small enough that every index computed from it fits int64_t).
int64_t CheckedProduct(const Napi::Env& env, std::initializer_list<int64_t> dims, const char* name);

struct NamedDim {
  const char* name;  // the DESIGN.md letter: B, H, Sq, M, K, ...
  int64_t value;
};
// The length a buffer must have, and the dims it is the product of, for the formula a message
// shows (as lib/validate.ts writes it: "B*H*Sq*D = 1*8*16*64 = 8192", or "B = 2" for a single
// dim). The formula is built only when a message needs it: a call that passes its checks makes
// no string.
constexpr int kMaxExtentDims = 5;
struct Extent {
  int64_t length;
  NamedDim dims[kMaxExtentDims];
  int n_dims;
  // When set, the length is this function of the dims: "gemmPackedLength(N, K) = gemmPackedLength(3, 4) = 88".
  const char* function;
};
std::string FormulaOf(const Extent& e);
// The product of dims (overflow-checked as CheckedProduct, naming `name`).
Extent ExtentOf(const Napi::Env& env, const char* name, std::initializer_list<NamedDim> dims);

// A typed array of the given element type and exactly `e.length` elements, or a RangeError
// "Expected <name>.length to be <formula> but received <length>". Returns its data pointer, which
// already includes the byteOffset. A detached buffer has length 0 and so fails.
void* ExpectTyped(const Napi::Value& v, const char* name, napi_typedarray_type type, const Extent& e);

inline float* ExpectF32(const Napi::Value& v, const char* name, const Extent& e) {
  return static_cast<float*>(ExpectTyped(v, name, napi_float32_array, e));
}

// Same as ExpectTyped, or nullptr for undefined / null.
inline void* OptionalTyped(const Napi::Value& v, const char* name, napi_typedarray_type type, const Extent& e) {
  return v.IsUndefined() || v.IsNull() ? nullptr : ExpectTyped(v, name, type, e);
}

// "Expected <name>.length to be <formula> but received <actual>" (RangeError).
[[noreturn]] void ThrowLength(const Napi::Env& env, const std::string& name, const std::string& formula,
                              int64_t actual);

// "Float32Array(8)", "-3", "undefined": what a message shows of a value, never its contents.
std::string Describe(const Napi::Value& v);

[[noreturn]] void ThrowRange(const Napi::Env& env, const std::string& name, const std::string& expected,
                             const std::string& actual);

}  // namespace qkv
