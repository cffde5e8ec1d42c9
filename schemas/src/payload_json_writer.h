// Payload bytes -> JSON text, walking a FlatBuffers table through the schema a
// flatbuffers::Parser loaded. It replaces flatbuffers::GenerateTextFromTable, which prints
// doubles with 12 decimals and floats with 6: JSON read back from doppel (the CLI, the
// gateway, exports) must hold the very values that were stored, so that a script appending
// it again writes the same payload bytes. Every number here reads back (strtod / strtof) to
// the value in the buffer; everything else is printed as FlatBuffers printed it.
#pragma once

#include <flatbuffers/idl.h>

#include <string>

namespace doppel::schemas {

enum class PayloadJsonError {
  kNone,
  kNotShowable,  // a string that is not UTF-8, or a schema feature this writer refuses
  kNonFinite,    // NaN or an infinity: JSON has no such numbers
};

// Appends to `out` the JSON of `table`, whose type is `def`, in the shape FlatBuffers'
// printer gives with strict_json and indent_step -1 (one line, `{"name": value,...}`): fields
// in schema order, scalars equal to their default left out when the buffer leaves them out,
// enum values by name, strings escaped to ASCII. Floating point numbers are the shortest
// text that reads back to the same double (float for float fields), whole ones ending in
// ".0" as before. On an error `out` holds a partial text.
// Unions, nested_flatbuffer and flexbuffer fields are refused (kNotShowable): the payload
// schema has none, and a schema that adds one must extend this writer and its tests.
// REQUIRES: the buffer holding `table` verifies.
PayloadJsonError WritePayloadJson(const flatbuffers::StructDef& def,
                                  const flatbuffers::Table& table, std::string& out);

}  // namespace doppel::schemas
