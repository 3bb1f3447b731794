#include "common/node_name.h"

#include <gtest/gtest.h>

#include <string>

namespace tended {
namespace {

TEST(NodeNameTest, KubernetesNodeNamesAreAccepted) {
  for (const char* name : {"k8s-node1", "k8s-master", "a", "0",
                           "ip-10-0-0-1.eu-west-1.compute.internal", "node.example.com"}) {
    EXPECT_TRUE(IsDns1123Subdomain(name)) << name;
  }
  EXPECT_TRUE(IsDns1123Subdomain(std::string(253, 'a')));
}

TEST(NodeNameTest, WhatKubernetesRefusesIsRefused) {
  for (const char* name : {"", "Not_A_Node", "UPPER", "-node", "node-", "a..b", ".a", "a.", "a.-b",
                           "a-.b", "node 1", "nöde"}) {
    EXPECT_FALSE(IsDns1123Subdomain(name)) << name;
  }
  EXPECT_FALSE(IsDns1123Subdomain(std::string(254, 'a')));
}

}  // namespace
}  // namespace tended
