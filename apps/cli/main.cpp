// `weft`: the command-line tool for users, scripts and tests to drive a replica.
//
// Commands (weft --db PATH COMMAND ...; `weft --version` prints the release and protocol):
//   set DOC KEY JSON                  set a root key: objects become maps, arrays lists, other
//                                     values scalars (register values)
//   get DOC [KEY] [--at TOKEN]        print the document or one key as JSON (as it was at
//                                     TOKEN, a causal token of the document)
//   incr DOC KEY N                    add N to the counter at KEY (created when absent)
//   text-insert DOC KEY POS STRING    insert into the text at KEY (created when absent)
//   text-delete DOC KEY POS LEN       delete LEN code points at POS
//   delete DOC KEY                    delete a root key
//   dump DOC                          the canonical state as JSON
//   info                              node ID, documents and their version vectors
//   id                                this device's public key (its identity), 64 hex characters
//   log DOC                           the changes, one line each
//   token DOC                         the document's current causal token
//   history DOC                       the versions of the document, one JSON line each: the
//                                     change, its author and time, and the token it led to
//   sync URL [URL...] [--quorum W] [--doc DOC]... [--timeout SECONDS] [--token TOKEN]
//        [--relay-key KEY] [--ca FILE]
//                                     exchange changes with relays until both sides have each
//                                     other's (every document when none is named) and the relay
//                                     acknowledged storing them, with at least W of the URLs
//                                     (all by default); an admission token for relays that ask
//                                     for one; a pinned relay key; a wss:// URL is checked
//                                     against the CA certificates of FILE (PEM) or the system's
//   grant DOC KEY ROLE                give the device with that public key a role in DOC
//                                     (reader, writer or admin): a change, synced later
//   revoke DOC KEY                    take that device's role away (a change)
//   create DOC [--e2e]                create DOC owned by this device; with --e2e end-to-end
//                                     encrypted (relays store and forward only ciphertext;
//                                     grant and revoke rotate its key)
//   encryption DOC                    {"encrypted":..,"epoch":N,"has_key":..,"missing_epochs":[..]}
//   members DOC                       the access list: {"KEY": "owner"|"admin"|"writer"|"reader"}
//   issue-token DEVICE_KEY [--ttl SECONDS]
//                                     an admission token (hex) for that device, signed by this
//                                     database's key
//
// Exit status 0 on success; on bad input a one-line error on stderr, a non-zero status, and the
// database unchanged (every write is one transaction).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "weft/json.h"
#include "weft/replica.h"
#include "weft/sync.h"
#include "weft/version.h"

using namespace weft;

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

const char kUsage[] =
    "usage: weft --db PATH COMMAND ...\n"
    "       weft --version         the release and the sync protocol version\n"
    "  set DOC KEY JSON        set a root key to a JSON value\n"
    "  get DOC [KEY] [--at TOKEN]  print the document, or one key, as JSON (at TOKEN: as it\n"
    "                          was at that version)\n"
    "  incr DOC KEY N          add N to the counter at KEY\n"
    "  text-insert DOC KEY POS STRING   insert STRING at code point POS of the text at KEY\n"
    "  text-delete DOC KEY POS LEN      delete LEN code points at POS\n"
    "  delete DOC KEY          delete a root key\n"
    "  dump DOC                the canonical state as JSON\n"
    "  info                    node ID, documents and their version vectors\n"
    "  id                      this device's public key (its identity)\n"
    "  log DOC                 the changes, one line each\n"
    "  token DOC               the document's current causal token\n"
    "  history DOC             its versions: change, author, time and token, a JSON line each\n"
    "  sync URL [URL...] [--quorum W] [--doc DOC]... [--timeout SECONDS] [--token TOKEN]\n"
    "       [--relay-key KEY] [--ca FILE]\n"
    "                          exchange changes with relays (ws://HOST:PORT, or\n"
    "                          wss://HOST[:PORT] trusting the CAs of FILE or the system)\n"
    "                          until W of them (all by default) hold and acknowledged\n"
    "                          every change; --token: an admission token, --relay-key:\n"
    "                          refuse a relay with another key\n"
    "  grant DOC KEY ROLE      give a device (its public key) a role: reader, writer, admin\n"
    "  revoke DOC KEY          take a device's role away\n"
    "  members DOC             the access list as JSON: {\"KEY\": \"owner\"|\"admin\"|...}\n"
    "  create DOC [--e2e]      create DOC (with --e2e: end-to-end encrypted)\n"
    "  encryption DOC          whether DOC is encrypted, its key epoch, what this device lacks\n"
    "  issue-token DEVICE_KEY [--ttl SECONDS]\n"
    "                          an admission token for that device, signed by this database's\n"
    "                          key (relays started with --admission-key KEY of this database)\n";

int Fail(const std::string& message) {
  std::fprintf(stderr, "weft: %s\n", message.c_str());
  return kExitError;
}

int Fail(const Status& s) {
  return Fail(s.ToString());
}

Status WriteJson(MapRef map, const std::string& key, const json::Value& v);

crdt::Scalar ScalarOf(const json::Value& v) {
  switch (v.type()) {
    case json::Value::Type::kBool: return crdt::Scalar(v.as_bool());
    case json::Value::Type::kNumber:
      return v.is_int() ? crdt::Scalar(v.as_int()) : crdt::Scalar(v.as_number());
    case json::Value::Type::kString: return crdt::Scalar(v.as_string());
    default: return crdt::Scalar();
  }
}

// Fills a new list from a JSON array: scalars, nested maps and nested lists.
Status FillList(crdt::Transaction& txn, const crdt::Document& doc, ObjectId list,
                const json::Value::Array& items) {
  for (size_t i = 0; i < items.size(); ++i) {
    const json::Value& item = items[i];
    if (item.is_object()) {
      auto id = txn.ListInsertObject(list, i, ObjectKind::kMap);
      if (!id.ok()) return id.status();
      MapRef inner(&doc, &txn, *id);
      for (const auto& [k, child] : item.as_object()) {
        WEFT_RETURN_IF_ERROR(WriteJson(inner, k, child));
      }
    } else if (item.is_array()) {
      auto id = txn.ListInsertObject(list, i, ObjectKind::kList);
      if (!id.ok()) return id.status();
      WEFT_RETURN_IF_ERROR(FillList(txn, doc, *id, item.as_array()));
    } else {
      WEFT_RETURN_IF_ERROR(txn.ListInsert(list, i, {ScalarOf(item)}));
    }
  }
  return Status::Ok();
}

// Writes a JSON value at `key` of `map`: objects become maps, arrays lists, other values
// scalars (in the key's multi-value register).
Status WriteJson(MapRef map, const std::string& key, const json::Value& v) {
  crdt::Transaction& txn = *map.raw_txn();
  if (v.is_object()) {
    // Replace whatever the key held with a fresh map.
    auto id = txn.PutObject(map.id(), key, ObjectKind::kMap);
    if (!id.ok()) return id.status();
    MapRef inner(map.document(), &txn, *id);
    for (const auto& [k, child] : v.as_object()) WEFT_RETURN_IF_ERROR(WriteJson(inner, k, child));
    return Status::Ok();
  }
  if (v.is_array()) {
    auto id = txn.PutObject(map.id(), key, ObjectKind::kList);
    if (!id.ok()) return id.status();
    return FillList(txn, *map.document(), *id, v.as_array());
  }
  return map.Put(key, ScalarOf(v));
}

std::string ToHex(std::string_view bytes) {
  static const char* k = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += k[c >> 4];
    out += k[c & 15];
  }
  return out;
}

std::optional<std::string> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

// Parses a non-negative integer argument.
bool ParseSize(const std::string& s, size_t* out) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  *out = static_cast<size_t>(std::stoull(s));
  return true;
}

int Run(int argc, char** argv) {
  std::string db;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--db" && i + 1 < argc) {
      db = argv[++i];
    } else if (a.rfind("--db=", 0) == 0) {
      db = a.substr(5);
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version" && args.empty()) {
      std::printf("weft %s (sync protocol %u)\n", ReleaseVersion(), SyncProtocolVersion());
      return 0;
    } else {
      args.push_back(a);
    }
  }
  if (db.empty() || args.empty()) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }
  const std::string& cmd = args[0];
  auto need = [&](size_t n) { return args.size() == n + 1; };

  ReplicaOptions opts;
  // Reading commands never create a database.
  opts.create_if_missing = cmd == "set" || cmd == "incr" || cmd == "delete" || cmd == "info" ||
                           cmd == "id" || cmd == "text-insert" || cmd == "text-delete" ||
                           cmd == "sync" || cmd == "issue-token" || cmd == "grant" ||
                           cmd == "create";
  auto opened = Replica::Open(db, opts);
  if (!opened.ok()) return Fail(opened.status());
  Replica& r = **opened;

  if (cmd == "set" && need(3)) {
    auto value = json::Parse(args[3]);
    if (!value.ok()) return Fail("bad JSON: " + value.status().message());
    auto c = r.Transact(args[1], [&](Txn& t) { return WriteJson(t.root(), args[2], *value); });
    return c.ok() ? 0 : Fail(c.status());
  }
  if (cmd == "incr" && need(3)) {
    char* end = nullptr;
    errno = 0;
    long long n = std::strtoll(args[3].c_str(), &end, 10);
    if (args[3].empty() || *end != '\0' || errno == ERANGE) {
      return Fail("N must be an integer: " + args[3]);
    }
    auto c = r.Transact(args[1], [&](Txn& t) {
      auto counter = t.root().Counter(args[2]);
      if (!counter.ok()) return counter.status();
      return counter->Increment(n);
    });
    return c.ok() ? 0 : Fail(c.status());
  }
  if (cmd == "text-insert" && need(4)) {
    size_t pos;
    if (!ParseSize(args[3], &pos)) return Fail("POS must be a non-negative integer: " + args[3]);
    auto c = r.Transact(args[1], [&](Txn& t) {
      auto text = t.root().Text(args[2]);
      if (!text.ok()) return text.status();
      return text->Insert(pos, args[4]);
    });
    return c.ok() ? 0 : Fail(c.status());
  }
  if (cmd == "text-delete" && need(4)) {
    size_t pos, len;
    if (!ParseSize(args[3], &pos)) return Fail("POS must be a non-negative integer: " + args[3]);
    if (!ParseSize(args[4], &len)) return Fail("LEN must be a non-negative integer: " + args[4]);
    auto c = r.Transact(args[1], [&](Txn& t) {
      auto text = t.root().Text(args[2]);
      if (!text.ok()) return text.status();
      return text->Delete(pos, len);
    });
    return c.ok() ? 0 : Fail(c.status());
  }
  if (cmd == "delete" && need(2)) {
    auto c = r.Transact(args[1], [&](Txn& t) {
      auto read = t.root().Get(args[2]);
      if (!read.ok()) return read.status();
      if (read->values.empty()) return Status::NotFound("no key \"" + args[2] + "\"");
      return t.root().Delete(args[2]);
    });
    return c.ok() ? 0 : Fail(c.status());
  }
  // get's --at TOKEN may stand anywhere after the command.
  std::optional<std::string> at;
  if (cmd == "get") {
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] != "--at") continue;
      if (i + 1 >= args.size()) return Fail("--at needs a causal token");
      at = args[i + 1];
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i),
                 args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
      break;
    }
  }
  if (cmd == "get" && (need(1) || need(2))) {
    std::string out;
    Status s;
    auto show = [&](const View& v) {
      if (need(1)) {
        out = v.ToJson();
        return;
      }
      auto key = v.document().KeyToJson(crdt::kRoot, args[2]);
      if (!key.ok())
        s = key.status();
      else if (!*key)
        s = Status::NotFound("no key \"" + args[2] + "\" in " + args[1]);
      else
        out = **key;
    };
    Status read;
    if (at) {
      auto token = DecodeCausalToken(*at);
      if (!token.ok()) return Fail("bad token: " + token.status().message());
      if (token->first != args[1]) {
        return Fail("the token is of document \"" + token->first + "\", not \"" + args[1] + "\"");
      }
      read = r.ReadAt(args[1], token->second, show);
    } else {
      read = r.Read(args[1], show);
    }
    if (!read.ok()) return Fail(read);
    if (!s.ok()) return Fail(s);
    std::printf("%s\n", out.c_str());
    return 0;
  }
  if (cmd == "dump" && need(1)) {
    std::string out;
    Status s = r.Read(args[1], [&](const View& v) { out = v.document().CanonicalJson(); });
    if (!s.ok()) return Fail(s);
    std::printf("%s\n", out.c_str());
    return 0;
  }
  if (cmd == "id" && need(0)) {
    std::printf("%s\n", r.public_key().ToHex().c_str());
    return 0;
  }
  if (cmd == "info" && need(0)) {
    auto docs = r.ListDocuments();
    if (!docs.ok()) return Fail(docs.status());
    json::Value info = json::Value::MakeObject();
    info.Set("node", json::Value::Str(r.node_id().ToHex()));
    json::Value list = json::Value::MakeObject();
    for (const auto& d : *docs) {
      auto v = r.Version(d);
      if (!v.ok()) return Fail(v.status());
      json::Value vv = json::Value::MakeObject();
      for (const auto& [node, seq] : v->entries()) {
        vv.Set(node.ToHex(), json::Value::Number(static_cast<double>(seq)));
      }
      list.Set(d, std::move(vv));
    }
    info.Set("documents", std::move(list));
    std::printf("%s\n", json::Serialize(info).c_str());
    return 0;
  }
  if (cmd == "sync" && args.size() >= 2) {
    std::vector<std::string> docs;
    std::vector<std::string> urls{args[1]};
    size_t quorum = 0;  // all
    double timeout_s = 30;
    SyncOptions so;
    for (size_t i = 2; i < args.size(); ++i) {
      if (args[i].rfind("--", 0) != 0) {
        urls.push_back(args[i]);
      } else if (args[i] == "--quorum" && i + 1 < args.size()) {
        char* end = nullptr;
        unsigned long w = std::strtoul(args[++i].c_str(), &end, 10);
        if (*end != '\0' || w == 0 || args[i][0] == '-') {
          return Fail("--quorum takes a number of relays, at least 1: " + args[i]);
        }
        quorum = w;
      } else if (args[i] == "--doc" && i + 1 < args.size()) {
        docs.push_back(args[++i]);
      } else if (args[i] == "--ca" && i + 1 < args.size()) {
        so.tls_ca_file = args[++i];
      } else if (args[i] == "--token" && i + 1 < args.size()) {
        auto token = FromHex(args[++i]);
        if (!token) return Fail("--token takes the hexadecimal token issue-token printed");
        so.credentials = std::move(*token);
      } else if (args[i] == "--relay-key" && i + 1 < args.size()) {
        so.relay_key = PublicKey::FromHex(args[++i]);
        if (!so.relay_key) return Fail("--relay-key takes a public key (64 hex characters)");
      } else if (args[i] == "--timeout" && i + 1 < args.size()) {
        char* end = nullptr;
        timeout_s = std::strtod(args[++i].c_str(), &end);
        if (*end != '\0' || !(timeout_s > 0) || timeout_s > 86400) {
          return Fail("--timeout must be a number of seconds (0 to 86400): " + args[i]);
        }
      } else {
        std::fputs(kUsage, stderr);
        return kExitUsage;
      }
    }
    if (quorum == 0) quorum = urls.size();
    if (quorum > urls.size()) {
      return Fail("--quorum " + std::to_string(quorum) + " is more than the " +
                  std::to_string(urls.size()) + " relay URL(s) given");
    }
    auto summary = SyncOnce(r, urls, quorum, docs,
                            std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)), so);
    if (!summary.ok()) return Fail(summary.status());
    std::string with = urls.size() == 1 ? urls[0]
                                        : std::to_string(quorum) + " of " +
                                              std::to_string(urls.size()) + " relays";
    std::printf("synced %zu document(s) with %s: %llu change(s) sent, %llu received\n",
                summary->documents, with.c_str(),
                static_cast<unsigned long long>(summary->changes_sent),
                static_cast<unsigned long long>(summary->changes_received));
    return 0;
  }
  if ((cmd == "grant" && need(3)) || (cmd == "revoke" && need(2))) {
    auto key = PublicKey::FromHex(args[2]);
    if (!key) return Fail("KEY must be a public key (64 hex characters, `weft id`): " + args[2]);
    Result<CommitInfo> c = Status::Ok();
    if (cmd == "grant") {
      auto role = crdt::RoleFromName(args[3]);
      if (!role || *role == Role::kNone || *role == Role::kOwner) {
        return Fail("ROLE must be reader, writer or admin: " + args[3]);
      }
      c = r.Grant(args[1], *key, *role);
    } else {
      c = r.Revoke(args[1], *key);
    }
    return c.ok() ? 0 : Fail(c.status());
  }
  if (cmd == "create" && (need(1) || (need(2) && args[2] == "--e2e"))) {
    if (r.HasDocument(args[1])) return Fail("document \"" + args[1] + "\" exists already");
    Status s = need(2) ? r.CreateEncryptedDocument(args[1]) : r.CreateDocument(args[1]);
    return s.ok() ? 0 : Fail(s);
  }
  if (cmd == "encryption" && need(1)) {
    auto e = r.Encryption(args[1]);
    if (!e.ok()) return Fail(e.status());
    json::Value out = json::Value::MakeObject();
    out.Set("encrypted", json::Value::Bool(e->encrypted));
    out.Set("epoch", json::Value::Number(static_cast<double>(e->epoch)));
    out.Set("has_key", json::Value::Bool(e->has_key));
    json::Value missing = json::Value::MakeArray();
    for (uint64_t m : e->missing_epochs) missing.Push(json::Value::Number(static_cast<double>(m)));
    out.Set("missing_epochs", std::move(missing));
    std::printf("%s\n", json::Serialize(out).c_str());
    return 0;
  }
  if (cmd == "members" && need(1)) {
    auto access = r.Access(args[1]);
    if (!access.ok()) return Fail(access.status());
    json::Value out = json::Value::MakeObject();
    for (const auto& [key, role] : access->members) {
      out.Set(key.ToHex(), json::Value::Str(crdt::RoleName(role)));
    }
    std::printf("%s\n", json::Serialize(out).c_str());
    return 0;
  }
  if (cmd == "issue-token" && (need(1) || (need(3) && args[2] == "--ttl"))) {
    auto device = PublicKey::FromHex(args[1]);
    if (!device) return Fail("DEVICE_KEY must be a public key (64 hex characters): " + args[1]);
    size_t ttl = 86400;
    if (need(3) && (!ParseSize(args[3], &ttl) || ttl == 0)) {
      return Fail("--ttl must be a positive number of seconds: " + args[3]);
    }
    auto token = IssueAdmissionToken(r, *device, std::chrono::seconds(static_cast<int64_t>(ttl)));
    if (!token.ok()) return Fail(token.status());
    std::printf("%s\n", ToHex(*token).c_str());
    return 0;
  }
  if (cmd == "token" && need(1)) {
    auto token = r.CausalToken(args[1]);
    if (!token.ok()) return Fail(token.status());
    std::printf("%s\n", token->c_str());
    return 0;
  }
  if (cmd == "history" && need(1)) {
    auto history = r.History(args[1]);
    if (!history.ok()) return Fail(history.status());
    for (const HistoryEntry& e : *history) {
      json::Value line = json::Value::MakeObject();
      line.Set("change", json::Value::Str(e.change.ToString() + ".." + std::to_string(e.end_seq)));
      line.Set("author", json::Value::Str(e.change.node.ToHex()));
      line.Set("time_ms", json::Value::Number(static_cast<double>(e.time_ms)));
      line.Set("ops", json::Value::Number(static_cast<double>(e.ops)));
      line.Set("token", json::Value::Str(EncodeCausalToken(args[1], e.version)));
      std::printf("%s\n", json::Serialize(line).c_str());
    }
    return 0;
  }
  if (cmd == "log" && need(1)) {
    auto changes = r.ChangesSince(args[1], {});
    if (!changes.ok()) return Fail(changes.status());
    for (const auto& blob : *changes) {
      auto c = crdt::DecodeChange(blob);
      if (!c.ok()) return Fail(c.status());
      std::printf("%s..%llu lamport=%llu time=%s ops=%zu deps=%s\n", c->id().ToString().c_str(),
                  static_cast<unsigned long long>(c->end_seq()),
                  static_cast<unsigned long long>(c->lamport), c->time.ToString().c_str(),
                  c->ops.size(), c->deps.ToString().c_str());
    }
    return 0;
  }
  std::fputs(kUsage, stderr);
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  return Run(argc, argv);
}
