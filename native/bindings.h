// Each binding file registers its functions on the addon's exports.
#pragma once

#include <napi.h>

namespace qkv {

void InitSdpa(Napi::Env env, Napi::Object exports);
void InitGemm(Napi::Env env, Napi::Object exports);

}  // namespace qkv
