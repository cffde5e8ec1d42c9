#include "payload_json_writer.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <type_traits>

namespace doppel::schemas {
namespace {

using flatbuffers::BaseType;
using flatbuffers::FieldDef;
using flatbuffers::StructDef;
using flatbuffers::Type;
using flatbuffers::uoffset_t;

// A scalar at `p`. memcpy, not a typed load: FlatBuffers aligns what it writes, but the cost
// is nothing and a misaligned double then stays a value instead of undefined behaviour.
template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return flatbuffers::EndianScalar(v);
}

// Where an offset slot (string, vector, table) points.
const uint8_t* Follow(const uint8_t* slot) { return slot + Load<uoffset_t>(slot); }

// Calls f(T{}) with the C++ type of a scalar base type.
template <typename F>
bool WithScalarType(BaseType t, F&& f) {
  switch (t) {
#define DOPPEL_SCALAR_CASE(ENUM, IDLTYPE, CTYPE, ...) \
  case flatbuffers::BASE_TYPE_##ENUM:                 \
    return f(CTYPE{});
    FLATBUFFERS_GEN_TYPES_SCALAR(DOPPEL_SCALAR_CASE)
#undef DOPPEL_SCALAR_CASE
    default:
      return false;
  }
}

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  PayloadJsonError error() const { return error_; }

  // A table, or the bytes of a struct when def.fixed.
  bool Object(const StructDef& def, const uint8_t* data) {
    out_ += '{';
    bool first = true;
    for (const FieldDef* fd : def.fields.vec) {
      const Type& type = fd->value.type;
      const uint8_t* slot =
          def.fixed
              ? data + fd->value.offset
              : reinterpret_cast<const flatbuffers::Table*>(data)->GetAddressOf(fd->value.offset);
      // FlatBuffers' printer shows an absent field only for a scalar key (the options doppel
      // uses do not ask for defaults), with its default; any other absent field is left out.
      const bool default_key =
          slot == nullptr && fd->key && flatbuffers::IsScalar(type.base_type) && !fd->deprecated;
      if (slot == nullptr && !default_key) continue;
      if (fd->nested_flatbuffer != nullptr || fd->flexbuffer) return Refuse();
      if (!first) out_ += ',';
      first = false;
      out_ += '"';
      out_ += fd->name;
      out_ += "\": ";
      if (default_key) {
        if (!Default(*fd)) return false;
      } else if (!Value(type, slot)) {
        return false;
      }
    }
    out_ += '}';
    return true;
  }

 private:
  // The value whose inline slot (scalar, struct, or offset to a string, vector or table) is
  // at `slot`.
  bool Value(const Type& type, const uint8_t* slot) {
    switch (type.base_type) {
      case flatbuffers::BASE_TYPE_STRUCT:
        return Object(*type.struct_def, type.struct_def->fixed ? slot : Follow(slot));
      case flatbuffers::BASE_TYPE_STRING: {
        const auto* s = reinterpret_cast<const flatbuffers::String*>(Follow(slot));
        // The same escaping as FlatBuffers' printer: ASCII out, ill-formed UTF-8 refused.
        if (!flatbuffers::EscapeString(s->c_str(), s->size(), &out_, /*allow_non_utf8=*/false,
                                       /*natural_utf8=*/false)) {
          return Refuse();
        }
        return true;
      }
      case flatbuffers::BASE_TYPE_VECTOR: {
        const uint8_t* vec = Follow(slot);
        return Elements(type.VectorType(), vec + sizeof(uoffset_t), Load<uoffset_t>(vec));
      }
      case flatbuffers::BASE_TYPE_ARRAY:
        return Elements(type.VectorType(), slot, type.fixed_length);
      case flatbuffers::BASE_TYPE_UNION:
        return Refuse();
      default:
        return WithScalarType(type.base_type,
                              [&](auto zero) { return Scalar(Load<decltype(zero)>(slot), type); });
    }
  }

  bool Elements(const Type& element, const uint8_t* first, size_t count) {
    if (element.base_type == flatbuffers::BASE_TYPE_UNION) return Refuse();
    // Structs and scalars lie inline; strings, tables and vectors as offsets.
    const size_t stride = flatbuffers::IsStruct(element) || flatbuffers::IsScalar(element.base_type)
                              ? flatbuffers::InlineSize(element)
                              : sizeof(uoffset_t);
    out_ += '[';
    for (size_t i = 0; i < count; ++i) {
      if (i > 0) out_ += ',';
      if (!Value(element, first + i * stride)) return false;
    }
    out_ += ']';
    return true;
  }

  bool Default(const FieldDef& fd) {
    return WithScalarType(fd.value.type.base_type, [&](auto zero) {
      using T = decltype(zero);
      T value{};
      if (!flatbuffers::StringToNumber(fd.value.constant.c_str(), &value)) return Refuse();
      return Scalar(value, fd.value.type);
    });
  }

  template <typename T>
  bool Scalar(T value, const Type& type) {
    if (flatbuffers::IsBool(type.base_type)) {
      out_ += value != 0 ? "true" : "false";
      return true;
    }
    if constexpr (std::is_floating_point_v<T>) {
      return Float(value);
    } else {
      if (type.enum_def != nullptr && EnumName(static_cast<int64_t>(value), *type.enum_def)) {
        return true;
      }
      // Wide types so that int8_t and uint8_t print as numbers.
      using Wide = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
      fmt::format_to(std::back_inserter(out_), "{}", static_cast<Wide>(value));
      return true;
    }
  }

  // fmt's `{}` is the shortest text that reads back to the same value (Dragonbox), for float
  // as for double: the float32 value's own shortest digits, not those of its double.
  template <typename T>
  bool Float(T value) {
    if (!std::isfinite(value)) {
      error_ = PayloadJsonError::kNonFinite;
      return false;
    }
    const size_t start = out_.size();
    fmt::format_to(std::back_inserter(out_), "{}", value);
    // A whole number keeps the ".0" FlatBuffers' printer gave it ("1.0", "-0.0"): readers
    // that type JSON numbers by their text (Python's json) still see a float.
    if (out_.find_first_of(".e", start) == std::string::npos) out_ += ".0";
    return true;
  }

  // The enum value's name, as FlatBuffers' printer shows it (bit flags as "A B"); false when
  // it has none and the number is to be printed.
  bool EnumName(int64_t value, const flatbuffers::EnumDef& def) {
    if (const flatbuffers::EnumVal* ev = def.ReverseLookup(value)) {
      out_ += '"';
      out_ += ev->name;
      out_ += '"';
      return true;
    }
    if (value == 0 || def.attributes.Lookup("bit_flags") == nullptr) return false;
    const auto bits = static_cast<uint64_t>(value);
    uint64_t mask = 0;
    std::string names;
    for (const flatbuffers::EnumVal* ev : def.Vals()) {
      const uint64_t flag = ev->GetAsUInt64();
      if ((flag & bits) == 0) continue;
      mask |= flag;
      names += names.empty() ? "" : " ";
      names += ev->name;
    }
    if (mask == 0 || mask != bits) return false;
    out_ += '"';
    out_ += names;
    out_ += '"';
    return true;
  }

  bool Refuse() {
    error_ = PayloadJsonError::kNotShowable;
    return false;
  }

  std::string& out_;
  PayloadJsonError error_ = PayloadJsonError::kNone;
};

}  // namespace

PayloadJsonError WritePayloadJson(const StructDef& def, const flatbuffers::Table& table,
                                  std::string& out) {
  Writer writer(out);
  if (writer.Object(def, reinterpret_cast<const uint8_t*>(&table))) {
    return PayloadJsonError::kNone;
  }
  // A false with no error recorded is a scalar type the schema cannot have; refuse it too.
  return writer.error() == PayloadJsonError::kNone ? PayloadJsonError::kNotShowable
                                                   : writer.error();
}

}  // namespace doppel::schemas
