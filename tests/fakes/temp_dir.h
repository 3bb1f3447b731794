// A scratch directory for one test, removed with everything in it when it goes away.
#ifndef TENDED_TESTS_FAKES_TEMP_DIR_H_
#define TENDED_TESTS_FAKES_TEMP_DIR_H_

#include <string>

namespace tended::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + relative
  std::string Path(const std::string& relative) const { return path_ + "/" + relative; }

 private:
  std::string path_;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_TEMP_DIR_H_
