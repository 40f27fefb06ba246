#include "text_diff.h"

#include <algorithm>

namespace weft::demo {

TextEdit Diff(const QString& before, const QString& after) {
  const int n = before.size(), m = after.size();
  int pre = 0;
  while (pre < n && pre < m && before[pre] == after[pre]) ++pre;
  if (pre > 0 && before[pre - 1].isHighSurrogate()) --pre;
  int suf = 0;
  while (suf < n - pre && suf < m - pre && before[n - 1 - suf] == after[m - 1 - suf]) ++suf;
  if (suf > 0 && before[n - suf].isLowSurrogate()) --suf;
  TextEdit e;
  e.pos = pre;
  e.removed = n - pre - suf;
  e.inserted = after.mid(pre, m - pre - suf);
  return e;
}

void Apply(QString& text, const TextEdit& edit) {
  int pos = std::clamp(edit.pos, 0, static_cast<int>(text.size()));
  int removed = std::clamp(edit.removed, 0, static_cast<int>(text.size()) - pos);
  text.replace(pos, removed, edit.inserted);
}

int Shift(int pos, const TextEdit& edit) {
  if (pos <= edit.pos) return pos;
  if (pos >= edit.pos + edit.removed) {
    return pos - edit.removed + static_cast<int>(edit.inserted.size());
  }
  return edit.pos;
}

std::vector<TextEdit> Rebase(const QString& base, const TextEdit& local, const QString& current) {
  TextEdit remote = Diff(base, current);
  if (remote.empty()) return {local};
  const int p = local.pos, end = local.pos + local.removed;
  const int q = remote.pos, qend = remote.pos + remote.removed;
  const int ir = static_cast<int>(remote.inserted.size());
  const int delta = ir - remote.removed;
  if (end <= q) return {local};  // wholly before the remote region
  if (p >= qend) return {TextEdit{p + delta, local.removed, local.inserted}};  // wholly after
  // Overlap: delete what lies outside the remote region, insert beside it.
  std::vector<TextEdit> out;
  if (end > qend) out.push_back(TextEdit{qend + delta, end - qend, QString()});
  if (p < q) {
    out.push_back(TextEdit{p, q - p, local.inserted});
  } else if (!local.inserted.isEmpty()) {
    out.push_back(TextEdit{q + ir, 0, local.inserted});
  }
  return out;
}

size_t CodePointIndex(const QString& text, int pos) {
  pos = std::clamp(pos, 0, static_cast<int>(text.size()));
  size_t n = 0;
  for (int i = 0; i < pos; ++i) {
    if (!text[i].isLowSurrogate() || i == 0 || !text[i - 1].isHighSurrogate()) ++n;
  }
  return n;
}

int Utf16Index(const QString& text, size_t index) {
  int i = 0;
  const int size = static_cast<int>(text.size());
  for (size_t n = 0; n < index && i < size; ++n) {
    if (text[i].isHighSurrogate() && i + 1 < size && text[i + 1].isLowSurrogate()) {
      i += 2;
    } else {
      ++i;
    }
  }
  return i;
}

QString ModelForm(QString raw) {
  for (QChar& c : raw) {
    if (c == QChar::ParagraphSeparator || c == QChar::LineSeparator) c = QLatin1Char('\n');
  }
  return raw;
}

}  // namespace weft::demo
