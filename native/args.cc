// SPDX-License-Identifier: MIT
//
// The argument readers of args.h: one message format for every binding.
#include "args.h"

#include <cmath>

namespace qkv {

namespace {

constexpr int64_t kMaxElements = int64_t{1} << 40;

const char* TypedArrayName(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

}  // namespace

std::string Describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) return v.ToString().Utf8Value();
  if (v.IsTypedArray()) {
    Napi::TypedArray t = v.As<Napi::TypedArray>();
    return std::string(TypedArrayName(t.TypedArrayType())) + "(" + std::to_string(t.ElementLength()) + ")";
  }
  if (v.IsString()) return "string";
  if (v.IsBoolean()) return "boolean";
  if (v.IsFunction()) return "function";
  return "object";
}

void ThrowRange(const Napi::Env& env, const std::string& name, const std::string& expected,
                const std::string& actual) {
  throw Napi::RangeError::New(env, "Expected " + expected + " for " + name + " but received " + actual);
}

int64_t ExpectInt(const Napi::Value& v, const char* name, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(v.Env(), std::string("Expected an integer for ") + name + " but received " + Describe(v));
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || std::floor(d) != d) {
    ThrowRange(v.Env(), name, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", Describe(v));
  }
  return static_cast<int64_t>(d);
}

int64_t ExpectDim(const Napi::Value& v, const char* name) { return ExpectInt(v, name, 1, INT32_MAX); }

double ExpectFinite(const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(v.Env(), std::string("Expected a number for ") + name + " but received " + Describe(v));
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) ThrowRange(v.Env(), name, "a finite number", Describe(v));
  return d;
}

int64_t CheckedProduct(const Napi::Env& env, std::initializer_list<int64_t> dims, const char* name) {
  int64_t p = 1;
  for (int64_t d : dims) {
    if (d < 0 || (d != 0 && p > kMaxElements / d)) {
      ThrowRange(env, std::string("the element count of ") + name, "at most 2^40", "more");
    }
    p *= d;
  }
  return p;
}

Extent ExtentOf(const Napi::Env& env, const char* name, std::initializer_list<NamedDim> dims) {
  Extent e{};
  e.length = 1;
  for (const NamedDim& d : dims) {
    e.length = CheckedProduct(env, {e.length, d.value}, name);
    if (e.n_dims < kMaxExtentDims) e.dims[e.n_dims++] = d;
  }
  return e;
}

std::string FormulaOf(const Extent& e) {
  if (e.function != nullptr) {
    std::string names, values;
    for (int i = 0; i < e.n_dims; ++i) {
      names += (i > 0 ? ", " : "") + std::string(e.dims[i].name);
      values += (i > 0 ? ", " : "") + std::to_string(e.dims[i].value);
    }
    return std::string(e.function) + "(" + names + ") = " + e.function + "(" + values + ") = " + std::to_string(e.length);
  }
  std::string names, values;
  for (int i = 0; i < e.n_dims; ++i) {
    if (i > 0) {
      names += '*';
      values += '*';
    }
    names += e.dims[i].name;
    values += std::to_string(e.dims[i].value);
  }
  return e.n_dims == 1 ? names + " = " + values : names + " = " + values + " = " + std::to_string(e.length);
}

void ThrowLength(const Napi::Env& env, const std::string& name, const std::string& formula, int64_t actual) {
  throw Napi::RangeError::New(env, "Expected " + name + ".length to be " + formula + " but received " +
                                       std::to_string(actual));
}

void* ExpectTyped(const Napi::Value& v, const char* name, napi_typedarray_type type, const Extent& e) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw Napi::TypeError::New(v.Env(), std::string("Expected ") + TypedArrayName(type) + " for " + name +
                                            " but received " + Describe(v));
  }
  // Raw N-API rather than TypedArray::ArrayBuffer().Data(): that path rejects a view over a
  // SharedArrayBuffer ("Invalid argument"). The data pointer already includes the byteOffset.
  napi_typedarray_type actual_type;
  size_t element_length = 0;
  void* data = nullptr;
  napi_status status = napi_get_typedarray_info(v.Env(), v, &actual_type, &element_length, &data, nullptr, nullptr);
  NAPI_THROW_IF_FAILED(v.Env(), status, nullptr);
  if (static_cast<int64_t>(element_length) != e.length) {
    ThrowLength(v.Env(), name, FormulaOf(e), static_cast<int64_t>(element_length));
  }
  // A detached view has length 0 and every length asked for here is at least 1, so a pointer
  // returned here is never null and never points at a detached buffer.
  if (data == nullptr) ThrowRange(v.Env(), name, "an attached typed array", "a detached one");
  return data;
}

}  // namespace qkv
