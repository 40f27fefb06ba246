// Text edits between the editor (Qt: UTF-16 code units) and a Weft text value (code points).
//
// The editor binding keeps a copy of what the editor shows and turns every change into one
// single-region edit (common prefix and suffix), never splitting a surrogate pair. When remote
// changes were committed after the editor last caught up, a local edit is rebased onto the current
// text before it is written. Plain functions on values; no Qt widgets, no SDK calls.
#pragma once

#include <QString>
#include <cstddef>
#include <vector>

namespace weft::demo {

// `removed` UTF-16 units at `pos` are replaced by `inserted`.
struct TextEdit {
  int pos = 0;
  int removed = 0;
  QString inserted;
  bool empty() const { return removed == 0 && inserted.isEmpty(); }
};

// The one-region edit that turns `before` into `after`.
TextEdit Diff(const QString& before, const QString& after);

// Applies `edit` to `text` (positions are clamped to the text).
void Apply(QString& text, const TextEdit& edit);

// Where a position (a cursor or a selection end) goes through `edit`: unchanged before it (and at
// an insertion point: text inserted at a cursor goes after it), shifted after it, and to the
// start of a deleted region inside it.
int Shift(int pos, const TextEdit& edit);

// A local edit made on `base`, rebased onto `current` (base plus remote edits): the edits to apply
// to `current`, in order, each in the coordinates left by the ones before it. Where the local
// and remote edits overlap, the local deletion keeps only what the remote side left in place.
std::vector<TextEdit> Rebase(const QString& base, const TextEdit& local, const QString& current);

// Code points before UTF-16 position `pos` of `text`, and the UTF-16 position of code point
// `index` (both clamped to the text).
size_t CodePointIndex(const QString& text, int pos);
int Utf16Index(const QString& text, size_t index);

// The editor's raw text in the model's form: paragraph and line separators become '\n'.
QString ModelForm(QString raw);

}  // namespace weft::demo
