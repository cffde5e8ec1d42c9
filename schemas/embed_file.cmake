# cmake -DIN=file -DOUT=file.cc -DNAME=Function -P embed_file.cmake
# Writes a C++ source defining `std::string_view doppel::schemas::NAME()` over IN's bytes.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "// Generated from ${IN}\n#include <string_view>\nnamespace doppel::schemas {\nnamespace {\nconst unsigned char kData[] = {${bytes}};\n}\nstd::string_view ${NAME}() {\n  return {reinterpret_cast<const char*>(kData), sizeof(kData)};\n}\n}  // namespace doppel::schemas\n")
