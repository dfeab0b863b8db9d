// Doc prelude `namespace_scope`: the block goes at namespace scope. Declares
// the names the docs' fragments assume, as stand-ins: declared, never
// defined (the blocks are only compiled). tests/check_doc_examples.py
// explains the convention.
#pragma once

#include <array>
#include <cstdio>
#include <grove/grove.hpp>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;

inline std::mutex mutex;
inline std::vector<std::string> urls;

grove::task<int> fetch();                  // some work that gives a value
grove::task<void> fetch(std::string url);  // the same, for one URL
grove::task<int> slow();                   // work that takes a while

struct connection {
  grove::task<void> goodbye();  // an asynchronous farewell to the server
};
inline connection conn;
grove::task<void> use(connection& c);
