{
  # AVX2/FMA code and AVX-512 code are each confined to a static library built with its own
  # flags: everything else compiles for baseline x86-64 and loads on any CPU. The kernels are
  # chosen at run time (native/dispatch.cc). Never -march=native, never -ffast-math.
  "variables": {
    "sanitize%": 0,
    "werror%": 0
  },
  "target_defaults": {
    "cflags_cc": ["-std=c++17", "-O3", "-fvisibility=hidden", "-fno-math-errno", "-Wall", "-Wextra"],
    "cflags_cc!": ["-std=gnu++17", "-O2", "-fno-exceptions"],
    "cflags!": ["-O2", "-fno-exceptions"],
    "xcode_settings": {
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "GCC_OPTIMIZATION_LEVEL": "3",
      "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES"
    },
    "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1 } },
    "include_dirs": ["native"],
    "conditions": [
      ["werror==1", { "cflags_cc": ["-Werror"] }],
      ["sanitize==1", {
        "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"],
        "ldflags": ["-fsanitize=address,undefined"]
      }]
    ]
  },
  "targets": [
    {
      "target_name": "qkv",
      # SWALLOW_UNTHROWABLE_EXCEPTIONS: a call that fails while its worker_thread is being terminated
      # cannot throw into JS any more; without it node-addon-api aborts the whole process.
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_ADDON_API_ENABLE_TYPE_CHECK_ON_AS",
                  "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "sources": [
        "native/addon.cc",
        "native/args.cc",
        "native/sdpa_binding.cc",
        "native/attention.cc",
        "native/dispatch.cc",
        "native/thread_pool.cc",
        "native/async_call.cc",
        "native/async_binding.cc",
        "native/kernels/scalar.cc",
        "native/gemm.cc",
        "native/gemm_binding.cc",
        "native/kernels/gemm_scalar.cc"
      ],
      "conditions": [
        ["target_arch=='x64'", { "dependencies": ["qkv_kernels_avx2", "qkv_kernels_avx512"] }],
        ["target_arch=='arm64'", { "dependencies": ["qkv_kernels_neon"] }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [{
        "target_name": "qkv_kernels_avx2",
        "type": "static_library",
        "sources": ["native/kernels/avx2.cc", "native/kernels/gemm_avx2.cc"],
        "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-fPIC"],
        "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mfma", "-mf16c"] },
        "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/arch:AVX2"] } }
      }, {
        "target_name": "qkv_kernels_avx512",
        "type": "static_library",
        "sources": ["native/kernels/avx512.cc", "native/kernels/gemm_avx512.cc"],
        "cflags_cc": ["-mavx512f", "-mavx2", "-mfma", "-mf16c", "-fPIC"],
        "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-mavx512f", "-mavx2", "-mfma", "-mf16c"] },
        "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/arch:AVX512"] } }
      }]
    }],
    ["target_arch=='arm64'", {
      "targets": [{
        "target_name": "qkv_kernels_neon",
        "type": "static_library",
        "sources": ["native/kernels/neon.cc", "native/kernels/gemm_neon.cc"],
        "cflags_cc": ["-fPIC"]
      }]
    }]
  ]
}
