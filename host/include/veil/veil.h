#pragma once
/**
 * @file veil.h
 * @brief Everything an application needs to embed veil.
 */
#include "veil/cpu_device.h"
#include "veil/device.h"
#include "veil/enclave.h"
#include "veil/error.h"
#include "veil/inference.h"
#include "veil/model_file.h"
#include "veil/session.h"
#include "veil/trainer.h"
