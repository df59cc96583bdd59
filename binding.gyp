# Build of ordo's Node-API addon (build/Release/ordo.node): C++17 with
# node-addon-api and C++ exceptions, warnings as errors. addon.cc, binding.h
# and the bind_*.cc files are the N-API door; the other sources under native/
# do not include napi.h and also build standalone for sanitizers and fuzzers.
{
  "targets": [
    {
      "target_name": "ordo",
      "sources": [
        "native/addon.cc",
        "native/bind_frame.cc",
        "native/bind_crossbar.cc",
        "native/bind_records.cc",
        "native/bind_conflict_table.cc",
        "native/crc32c.cc",
        "native/frame.cc",
        "native/crossbar.cc",
        "native/records.cc",
        "native/conflict_table.cc"
      ],
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
