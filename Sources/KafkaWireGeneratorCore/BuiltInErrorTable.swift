/// Kafka's error code table as the protocol guide prints it (Kafka 4.0, kafka.apache.org/40/protocol.html#protocol_error_codes,
/// generated there from `org.apache.kafka.common.protocol.Errors`). The generator reads the table from the spec folder's
/// `docs/protocol.html` when that file has it; the copy of the guide shipped with the specs only includes it by reference
/// (`<!--#include virtual="generated/protocol_errors.html" -->`), so this copy is used instead. Same markup, same parser.
enum BuiltInErrorTable {
    static let source = "Kafka 4.0 protocol guide (built into the generator)"

    static let html = #"""
<table class="data-table"><tbody>
<tr><th>Error</th>
<th>Code</th>
<th>Retriable</th>
<th>Description</th>
</tr>
<tr><td>UNKNOWN_SERVER_ERROR</td><td>-1</td><td>False</td><td>The server experienced an unexpected error when processing the request.</td></tr>
<tr><td>NONE</td><td>0</td><td>False</td><td></td></tr>
<tr><td>OFFSET_OUT_OF_RANGE</td><td>1</td><td>False</td><td>The requested offset is not within the range of offsets maintained by the server.</td></tr>
<tr><td>CORRUPT_MESSAGE</td><td>2</td><td>True</td><td>This message has failed its CRC checksum, exceeds the valid size, has a null key for a compacted topic, or is otherwise corrupt.</td></tr>
<tr><td>UNKNOWN_TOPIC_OR_PARTITION</td><td>3</td><td>True</td><td>This server does not host this topic-partition.</td></tr>
<tr><td>INVALID_FETCH_SIZE</td><td>4</td><td>False</td><td>The requested fetch size is invalid.</td></tr>
<tr><td>LEADER_NOT_AVAILABLE</td><td>5</td><td>True</td><td>There is no leader for this topic-partition as we are in the middle of a leadership election.</td></tr>
<tr><td>NOT_LEADER_OR_FOLLOWER</td><td>6</td><td>True</td><td>For requests intended only for the leader, this error indicates that the broker is not the current leader. For requests intended for any replica, this error indicates that the broker is not a replica of the topic partition.</td></tr>
<tr><td>REQUEST_TIMED_OUT</td><td>7</td><td>True</td><td>The request timed out.</td></tr>
<tr><td>BROKER_NOT_AVAILABLE</td><td>8</td><td>False</td><td>The broker is not available.</td></tr>
<tr><td>REPLICA_NOT_AVAILABLE</td><td>9</td><td>True</td><td>The replica is not available for the requested topic-partition. Produce/Fetch requests and other requests intended only for the leader or follower return NOT_LEADER_OR_FOLLOWER if the broker is not a replica of the topic-partition.</td></tr>
<tr><td>MESSAGE_TOO_LARGE</td><td>10</td><td>False</td><td>The request included a message larger than the max message size the server will accept.</td></tr>
<tr><td>STALE_CONTROLLER_EPOCH</td><td>11</td><td>False</td><td>The controller moved to another broker.</td></tr>
<tr><td>OFFSET_METADATA_TOO_LARGE</td><td>12</td><td>False</td><td>The metadata field of the offset request was too large.</td></tr>
<tr><td>NETWORK_EXCEPTION</td><td>13</td><td>True</td><td>The server disconnected before a response was received.</td></tr>
<tr><td>COORDINATOR_LOAD_IN_PROGRESS</td><td>14</td><td>True</td><td>The coordinator is loading and hence can't process requests.</td></tr>
<tr><td>COORDINATOR_NOT_AVAILABLE</td><td>15</td><td>True</td><td>The coordinator is not available.</td></tr>
<tr><td>NOT_COORDINATOR</td><td>16</td><td>True</td><td>This is not the correct coordinator.</td></tr>
<tr><td>INVALID_TOPIC_EXCEPTION</td><td>17</td><td>False</td><td>The request attempted to perform an operation on an invalid topic.</td></tr>
<tr><td>RECORD_LIST_TOO_LARGE</td><td>18</td><td>False</td><td>The request included message batch larger than the configured segment size on the server.</td></tr>
<tr><td>NOT_ENOUGH_REPLICAS</td><td>19</td><td>True</td><td>Messages are rejected since there are fewer in-sync replicas than required.</td></tr>
<tr><td>NOT_ENOUGH_REPLICAS_AFTER_APPEND</td><td>20</td><td>True</td><td>Messages are written to the log, but to fewer in-sync replicas than required.</td></tr>
<tr><td>INVALID_REQUIRED_ACKS</td><td>21</td><td>False</td><td>Produce request specified an invalid value for required acks.</td></tr>
<tr><td>ILLEGAL_GENERATION</td><td>22</td><td>False</td><td>Specified group generation id is not valid.</td></tr>
<tr><td>INCONSISTENT_GROUP_PROTOCOL</td><td>23</td><td>False</td><td>The group member's supported protocols are incompatible with those of existing members or first group member tried to join with empty protocol type or empty protocol list.</td></tr>
<tr><td>INVALID_GROUP_ID</td><td>24</td><td>False</td><td>The configured groupId is invalid.</td></tr>
<tr><td>UNKNOWN_MEMBER_ID</td><td>25</td><td>False</td><td>The coordinator is not aware of this member.</td></tr>
<tr><td>INVALID_SESSION_TIMEOUT</td><td>26</td><td>False</td><td>The session timeout is not within the range allowed by the broker (as configured by group.min.session.timeout.ms and group.max.session.timeout.ms).</td></tr>
<tr><td>REBALANCE_IN_PROGRESS</td><td>27</td><td>False</td><td>The group is rebalancing, so a rejoin is needed.</td></tr>
<tr><td>INVALID_COMMIT_OFFSET_SIZE</td><td>28</td><td>False</td><td>The committing offset data size is not valid.</td></tr>
<tr><td>TOPIC_AUTHORIZATION_FAILED</td><td>29</td><td>False</td><td>Topic authorization failed.</td></tr>
<tr><td>GROUP_AUTHORIZATION_FAILED</td><td>30</td><td>False</td><td>Group authorization failed.</td></tr>
<tr><td>CLUSTER_AUTHORIZATION_FAILED</td><td>31</td><td>False</td><td>Cluster authorization failed.</td></tr>
<tr><td>INVALID_TIMESTAMP</td><td>32</td><td>False</td><td>The timestamp of the message is out of acceptable range.</td></tr>
<tr><td>UNSUPPORTED_SASL_MECHANISM</td><td>33</td><td>False</td><td>The broker does not support the requested SASL mechanism.</td></tr>
<tr><td>ILLEGAL_SASL_STATE</td><td>34</td><td>False</td><td>Request is not valid given the current SASL state.</td></tr>
<tr><td>UNSUPPORTED_VERSION</td><td>35</td><td>False</td><td>The version of API is not supported.</td></tr>
<tr><td>TOPIC_ALREADY_EXISTS</td><td>36</td><td>False</td><td>Topic with this name already exists.</td></tr>
<tr><td>INVALID_PARTITIONS</td><td>37</td><td>False</td><td>Number of partitions is below 1.</td></tr>
<tr><td>INVALID_REPLICATION_FACTOR</td><td>38</td><td>False</td><td>Replication factor is below 1 or larger than the number of available brokers.</td></tr>
<tr><td>INVALID_REPLICA_ASSIGNMENT</td><td>39</td><td>False</td><td>Replica assignment is invalid.</td></tr>
<tr><td>INVALID_CONFIG</td><td>40</td><td>False</td><td>Configuration is invalid.</td></tr>
<tr><td>NOT_CONTROLLER</td><td>41</td><td>True</td><td>This is not the correct controller for this cluster.</td></tr>
<tr><td>INVALID_REQUEST</td><td>42</td><td>False</td><td>This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker. See the broker logs for more details.</td></tr>
<tr><td>UNSUPPORTED_FOR_MESSAGE_FORMAT</td><td>43</td><td>False</td><td>The message format version on the broker does not support the request.</td></tr>
<tr><td>POLICY_VIOLATION</td><td>44</td><td>False</td><td>Request parameters do not satisfy the configured policy.</td></tr>
<tr><td>OUT_OF_ORDER_SEQUENCE_NUMBER</td><td>45</td><td>False</td><td>The broker received an out of order sequence number.</td></tr>
<tr><td>DUPLICATE_SEQUENCE_NUMBER</td><td>46</td><td>False</td><td>The broker received a duplicate sequence number.</td></tr>
<tr><td>INVALID_PRODUCER_EPOCH</td><td>47</td><td>False</td><td>Producer attempted to produce with an old epoch.</td></tr>
<tr><td>INVALID_TXN_STATE</td><td>48</td><td>False</td><td>The producer attempted a transactional operation in an invalid state.</td></tr>
<tr><td>INVALID_PRODUCER_ID_MAPPING</td><td>49</td><td>False</td><td>The producer attempted to use a producer id which is not currently assigned to its transactional id.</td></tr>
<tr><td>INVALID_TRANSACTION_TIMEOUT</td><td>50</td><td>False</td><td>The transaction timeout is larger than the maximum value allowed by the broker (as configured by transaction.max.timeout.ms).</td></tr>
<tr><td>CONCURRENT_TRANSACTIONS</td><td>51</td><td>True</td><td>The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing.</td></tr>
<tr><td>TRANSACTION_COORDINATOR_FENCED</td><td>52</td><td>False</td><td>Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator for a given producer.</td></tr>
<tr><td>TRANSACTIONAL_ID_AUTHORIZATION_FAILED</td><td>53</td><td>False</td><td>Transactional Id authorization failed.</td></tr>
<tr><td>SECURITY_DISABLED</td><td>54</td><td>False</td><td>Security features are disabled.</td></tr>
<tr><td>OPERATION_NOT_ATTEMPTED</td><td>55</td><td>False</td><td>The broker did not attempt to execute this operation. This may happen for batched RPCs where some operations in the batch failed, causing the broker to respond without trying the rest.</td></tr>
<tr><td>KAFKA_STORAGE_ERROR</td><td>56</td><td>True</td><td>Disk error when trying to access log file on the disk.</td></tr>
<tr><td>LOG_DIR_NOT_FOUND</td><td>57</td><td>False</td><td>The user-specified log directory is not found in the broker config.</td></tr>
<tr><td>SASL_AUTHENTICATION_FAILED</td><td>58</td><td>False</td><td>SASL Authentication failed.</td></tr>
<tr><td>UNKNOWN_PRODUCER_ID</td><td>59</td><td>False</td><td>This exception is raised by the broker if it could not locate the producer metadata associated with the producerId in question. This could happen if, for instance, the producer's records were deleted because their retention time had elapsed. Once the last records of the producerId are removed, the producer's metadata is removed from the broker, and future appends by the producer will return this exception.</td></tr>
<tr><td>REASSIGNMENT_IN_PROGRESS</td><td>60</td><td>False</td><td>A partition reassignment is in progress.</td></tr>
<tr><td>DELEGATION_TOKEN_AUTH_DISABLED</td><td>61</td><td>False</td><td>Delegation Token feature is not enabled.</td></tr>
<tr><td>DELEGATION_TOKEN_NOT_FOUND</td><td>62</td><td>False</td><td>Delegation Token is not found on server.</td></tr>
<tr><td>DELEGATION_TOKEN_OWNER_MISMATCH</td><td>63</td><td>False</td><td>Specified Principal is not valid Owner/Renewer.</td></tr>
<tr><td>DELEGATION_TOKEN_REQUEST_NOT_ALLOWED</td><td>64</td><td>False</td><td>Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels and on delegation token authenticated channels.</td></tr>
<tr><td>DELEGATION_TOKEN_AUTHORIZATION_FAILED</td><td>65</td><td>False</td><td>Delegation Token authorization failed.</td></tr>
<tr><td>DELEGATION_TOKEN_EXPIRED</td><td>66</td><td>False</td><td>Delegation Token is expired.</td></tr>
<tr><td>INVALID_PRINCIPAL_TYPE</td><td>67</td><td>False</td><td>Supplied principalType is not supported.</td></tr>
<tr><td>NON_EMPTY_GROUP</td><td>68</td><td>False</td><td>The group is not empty.</td></tr>
<tr><td>GROUP_ID_NOT_FOUND</td><td>69</td><td>False</td><td>The group id does not exist.</td></tr>
<tr><td>FETCH_SESSION_ID_NOT_FOUND</td><td>70</td><td>True</td><td>The fetch session ID was not found.</td></tr>
<tr><td>INVALID_FETCH_SESSION_EPOCH</td><td>71</td><td>True</td><td>The fetch session epoch is invalid.</td></tr>
<tr><td>LISTENER_NOT_FOUND</td><td>72</td><td>True</td><td>There is no listener on the leader broker that matches the listener on which metadata request was processed.</td></tr>
<tr><td>TOPIC_DELETION_DISABLED</td><td>73</td><td>False</td><td>Topic deletion is disabled.</td></tr>
<tr><td>FENCED_LEADER_EPOCH</td><td>74</td><td>True</td><td>The leader epoch in the request is older than the epoch on the broker.</td></tr>
<tr><td>UNKNOWN_LEADER_EPOCH</td><td>75</td><td>True</td><td>The leader epoch in the request is newer than the epoch on the broker.</td></tr>
<tr><td>UNSUPPORTED_COMPRESSION_TYPE</td><td>76</td><td>False</td><td>The requesting client does not support the compression type of given partition.</td></tr>
<tr><td>STALE_BROKER_EPOCH</td><td>77</td><td>False</td><td>Broker epoch has changed.</td></tr>
<tr><td>OFFSET_NOT_AVAILABLE</td><td>78</td><td>True</td><td>The leader high watermark has not caught up from a recent leader election so the offsets cannot be guaranteed to be monotonically increasing.</td></tr>
<tr><td>MEMBER_ID_REQUIRED</td><td>79</td><td>False</td><td>The group member needs to have a valid member id before actually entering a consumer group.</td></tr>
<tr><td>PREFERRED_LEADER_NOT_AVAILABLE</td><td>80</td><td>True</td><td>The preferred leader was not available.</td></tr>
<tr><td>GROUP_MAX_SIZE_REACHED</td><td>81</td><td>False</td><td>The consumer group has reached its max size.</td></tr>
<tr><td>FENCED_INSTANCE_ID</td><td>82</td><td>False</td><td>The broker rejected this static consumer since another consumer with the same group.instance.id has registered with a different member.id.</td></tr>
<tr><td>ELIGIBLE_LEADERS_NOT_AVAILABLE</td><td>83</td><td>True</td><td>Eligible topic partition leaders are not available.</td></tr>
<tr><td>ELECTION_NOT_NEEDED</td><td>84</td><td>True</td><td>Leader election not needed for topic partition.</td></tr>
<tr><td>NO_REASSIGNMENT_IN_PROGRESS</td><td>85</td><td>False</td><td>No partition reassignment is in progress.</td></tr>
<tr><td>GROUP_SUBSCRIBED_TO_TOPIC</td><td>86</td><td>False</td><td>Deleting offsets of a topic is forbidden while the consumer group is actively subscribed to it.</td></tr>
<tr><td>INVALID_RECORD</td><td>87</td><td>False</td><td>This record has failed the validation on broker and hence will be rejected.</td></tr>
<tr><td>UNSTABLE_OFFSET_COMMIT</td><td>88</td><td>True</td><td>There are unstable offsets that need to be cleared.</td></tr>
<tr><td>THROTTLING_QUOTA_EXCEEDED</td><td>89</td><td>True</td><td>The throttling quota has been exceeded.</td></tr>
<tr><td>PRODUCER_FENCED</td><td>90</td><td>False</td><td>There is a newer producer with the same transactionalId which fences the current one.</td></tr>
<tr><td>RESOURCE_NOT_FOUND</td><td>91</td><td>False</td><td>A request illegally referred to a resource that does not exist.</td></tr>
<tr><td>DUPLICATE_RESOURCE</td><td>92</td><td>False</td><td>A request illegally referred to the same resource twice.</td></tr>
<tr><td>UNACCEPTABLE_CREDENTIAL</td><td>93</td><td>False</td><td>Requested credential would not meet criteria for acceptability.</td></tr>
<tr><td>INCONSISTENT_VOTER_SET</td><td>94</td><td>False</td><td>Indicates that the either the sender or recipient of a voter-only request is not one of the expected voters.</td></tr>
<tr><td>INVALID_UPDATE_VERSION</td><td>95</td><td>False</td><td>The given update version was invalid.</td></tr>
<tr><td>FEATURE_UPDATE_FAILED</td><td>96</td><td>False</td><td>Unable to update finalized features due to an unexpected server error.</td></tr>
<tr><td>PRINCIPAL_DESERIALIZATION_FAILURE</td><td>97</td><td>False</td><td>Request principal deserialization failed during forwarding. This indicates an internal error on the broker cluster security setup.</td></tr>
<tr><td>SNAPSHOT_NOT_FOUND</td><td>98</td><td>False</td><td>Requested snapshot was not found.</td></tr>
<tr><td>POSITION_OUT_OF_RANGE</td><td>99</td><td>False</td><td>Requested position is not greater than or equal to zero, and less than the size of the snapshot.</td></tr>
<tr><td>UNKNOWN_TOPIC_ID</td><td>100</td><td>True</td><td>This server does not host this topic ID.</td></tr>
<tr><td>DUPLICATE_BROKER_REGISTRATION</td><td>101</td><td>False</td><td>This broker ID is already in use.</td></tr>
<tr><td>BROKER_ID_NOT_REGISTERED</td><td>102</td><td>False</td><td>The given broker ID was not registered.</td></tr>
<tr><td>INCONSISTENT_TOPIC_ID</td><td>103</td><td>True</td><td>The log's topic ID did not match the topic ID in the request.</td></tr>
<tr><td>INCONSISTENT_CLUSTER_ID</td><td>104</td><td>False</td><td>The clusterId in the request does not match that found on the server.</td></tr>
<tr><td>TRANSACTIONAL_ID_NOT_FOUND</td><td>105</td><td>False</td><td>The transactionalId could not be found.</td></tr>
<tr><td>FETCH_SESSION_TOPIC_ID_ERROR</td><td>106</td><td>True</td><td>The fetch session encountered inconsistent topic ID usage.</td></tr>
<tr><td>INELIGIBLE_REPLICA</td><td>107</td><td>False</td><td>The new ISR contains at least one ineligible replica.</td></tr>
<tr><td>NEW_LEADER_ELECTED</td><td>108</td><td>False</td><td>The AlterPartition request successfully updated the partition state but the leader has changed.</td></tr>
<tr><td>OFFSET_MOVED_TO_TIERED_STORAGE</td><td>109</td><td>False</td><td>The requested offset is moved to tiered storage.</td></tr>
<tr><td>FENCED_MEMBER_EPOCH</td><td>110</td><td>False</td><td>The member epoch is fenced by the group coordinator. The member must abandon all its partitions and rejoin.</td></tr>
<tr><td>UNRELEASED_INSTANCE_ID</td><td>111</td><td>False</td><td>The instance ID is still used by another member in the consumer group. That member must leave first.</td></tr>
<tr><td>UNSUPPORTED_ASSIGNOR</td><td>112</td><td>False</td><td>The assignor or its version range is not supported by the consumer group.</td></tr>
<tr><td>STALE_MEMBER_EPOCH</td><td>113</td><td>False</td><td>The member epoch is stale. The member must retry after receiving its updated member epoch via the ConsumerGroupHeartbeat API.</td></tr>
<tr><td>MISMATCHED_ENDPOINT_TYPE</td><td>114</td><td>False</td><td>The request was sent to an endpoint of the wrong type.</td></tr>
<tr><td>UNSUPPORTED_ENDPOINT_TYPE</td><td>115</td><td>False</td><td>This endpoint type is not supported yet.</td></tr>
<tr><td>UNKNOWN_CONTROLLER_ID</td><td>116</td><td>False</td><td>This controller ID is not known.</td></tr>
<tr><td>UNKNOWN_SUBSCRIPTION_ID</td><td>117</td><td>False</td><td>Client sent a push telemetry request with an invalid or outdated subscription ID.</td></tr>
<tr><td>TELEMETRY_TOO_LARGE</td><td>118</td><td>False</td><td>Client sent a push telemetry request larger than the maximum size the broker will accept.</td></tr>
<tr><td>INVALID_REGISTRATION</td><td>119</td><td>False</td><td>The controller has considered the broker registration to be invalid.</td></tr>
<tr><td>TRANSACTION_ABORTABLE</td><td>120</td><td>False</td><td>The server encountered an error with the transaction. The client can abort the transaction to continue using this transactional ID.</td></tr>
<tr><td>INVALID_RECORD_STATE</td><td>121</td><td>False</td><td>The record state is invalid. The acknowledgement of delivery could not be completed.</td></tr>
<tr><td>SHARE_SESSION_NOT_FOUND</td><td>122</td><td>True</td><td>The share session was not found.</td></tr>
<tr><td>INVALID_SHARE_SESSION_EPOCH</td><td>123</td><td>True</td><td>The share session epoch is invalid.</td></tr>
<tr><td>FENCED_STATE_EPOCH</td><td>124</td><td>False</td><td>The share coordinator rejected the request because the share-group state epoch did not match.</td></tr>
<tr><td>INVALID_VOTER_KEY</td><td>125</td><td>False</td><td>The voter key doesn't match the receiving replica's key.</td></tr>
<tr><td>DUPLICATE_VOTER</td><td>126</td><td>False</td><td>The voter is already part of the set of voters.</td></tr>
<tr><td>VOTER_NOT_FOUND</td><td>127</td><td>False</td><td>The voter is not part of the set of voters.</td></tr>
<tr><td>INVALID_REGULAR_EXPRESSION</td><td>128</td><td>False</td><td>The regular expression is not valid.</td></tr>
<tr><td>REBOOTSTRAP_REQUIRED</td><td>129</td><td>False</td><td>Client metadata is stale, client should rebootstrap to obtain new metadata.</td></tr>
</tbody></table>
"""#
}
