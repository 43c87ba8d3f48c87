"""ACL test material: RocketMQ's shipped plain_acl.yml, byte for byte, and the accounts in it."""

from __future__ import annotations

from rmqstore.protocol.acl_signature import Credentials

# distribution/conf/plain_acl.yml of rocketmq-all-4.9.7, unchanged
SHIPPED_PLAIN_ACL = '''\
# Licensed to the Apache Software Foundation (ASF) under one or more
# contributor license agreements.  See the NOTICE file distributed with
# this work for additional information regarding copyright ownership.
# The ASF licenses this file to You under the Apache License, Version 2.0
# (the "License"); you may not use this file except in compliance with
# the License.  You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
#  Unless required by applicable law or agreed to in writing, software
#  distributed under the License is distributed on an "AS IS" BASIS,
#  WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
#  See the License for the specific language governing permissions and
#  limitations under the License.

globalWhiteRemoteAddresses:
  - 10.10.103.*
  - 192.168.0.*

accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
    groupPerms:
      # the group should convert to retry topic
      - groupA=DENY
      - groupB=PUB|SUB
      - groupC=SUB

  - accessKey: rocketmq2
    secretKey: 12345678
    whiteRemoteAddress: 192.168.1.*
    # if it is admin, it could access all resources
    admin: true
''' + "    \n"  # its last line: four spaces

ADMIN = Credentials("rocketmq2", "12345678")  # admin: true, whiteRemoteAddress 192.168.1.*
NORMAL = Credentials("RocketMQ", "12345678")  # default topic DENY, default group SUB
WRONG = Credentials("RocketMQ", "not-the-secret")
ALLOWED_TOPIC, DENIED_TOPIC, READ_ONLY_TOPIC = "topicB", "topicA", "topicC"  # of NORMAL
ALLOWED_GROUP, DENIED_GROUP = "groupB", "groupA"
