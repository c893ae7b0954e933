#include "CKafkaSupport.h"
