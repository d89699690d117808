// UTF-8 and the GPT-2 byte-level alphabet, shared by the tokenizer's components.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::text {

// Decodes the UTF-8 character at text[pos]; returns its length (1-4) and sets `cp`, or returns 0
// for bytes that do not start a valid, shortest-form, non-surrogate sequence.
size_t DecodeUtf8(std::string_view text, size_t pos, char32_t& cp);
void AppendUtf8(char32_t cp, std::string& out);
bool IsValidUtf8(std::string_view text);

// GPT-2's `bytes_to_unicode`: every byte gets a printable code point, so byte-level vocabularies
// can be JSON strings. Printable Latin-1 bytes map to themselves; the other 68, in order, to
// U+0100 + n (space -> U+0120 'Ġ', newline -> U+010A 'Ċ').
char32_t ByteToCodepoint(uint8_t byte);
// Appends the byte-level spelling of `bytes`.
void AppendByteLevel(std::string_view bytes, std::string& out);
// Appends the bytes a byte-level string stands for; false (and `out` unchanged) when a character
// is outside the alphabet, e.g. an added token such as "<pad>" written in plain text.
bool AppendFromByteLevel(std::string_view mapped, std::string& out);

// Character classes of Rust's `char` and the tokenizers pre-tokenizers built on them.
bool IsNumeric(char32_t cp);      // char::is_numeric: Nd, Nl, No
bool IsPunctuation(char32_t cp);  // ASCII punctuation or P* of Unicode 8 (tokenizers' is_punc)
// BERT's classes as tokenizers has them (Unicode 8 categories): Cc/Cf/Cs/Co but tab, LF, CR;
// and Mn.
bool IsBertControl(char32_t cp);
bool IsBertNonspacingMark(char32_t cp);
bool IsWordChar(char32_t cp);     // regex `\w`: alphabetic, marks, Nd, Pc, joiners
bool IsWhitespace(char32_t cp);   // regex `\s`: Unicode White_Space

// Version of the Unicode tables the classes above and normalization use (utf8proc's).
std::string_view Utf8procUnicodeVersion();

}  // namespace ferry::text
