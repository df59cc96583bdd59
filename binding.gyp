# Build of ordo's Node-API addon (build/Release/ordo.node): C++17 with
# node-addon-api and C++ exceptions, warnings as errors. The sources under
# native/ that do not include napi.h also build standalone for sanitizers and
# a fuzzer.
{
  "targets": [
    {
      "target_name": "ordo",
      "sources": ["native/addon.cc", "native/crc32c.cc", "native/frame.cc", "native/crossbar.cc", "native/records.cc", "native/conflict_table.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Werror", "-O2"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-Wall", "-Wextra", "-Werror"]
      }
    }
  ]
}
