//! `SolverParameter` and `SolverState`.

use super::net::{BLOB_PROTO, NET_PARAMETER, NET_STATE};
use super::*;

enumeration!(SNAPSHOT_FORMAT = "SnapshotFormat" [HDF5 = 0, BINARYPROTO = 1]);
enumeration!(SOLVER_MODE = "SolverMode" [CPU = 0, GPU = 1]);
enumeration!(SOLVER_TYPE = "SolverType" [SGD = 0, NESTEROV = 1, ADAGRAD = 2, RMSPROP = 3, ADADELTA = 4, ADAM = 5]);

message!(SOLVER_PARAMETER = "SolverParameter" [
    opt(1, "train_net", STRING, NONE),
    rep(2, "test_net", STRING),
    rep(3, "test_iter", INT32),
    opt(4, "test_interval", INT32, I(0)),
    opt(5, "base_lr", FLOAT, NONE),
    opt(6, "display", INT32, NONE),
    opt(7, "max_iter", INT32, NONE),
    // A string, not an enum (fixed, step, exp, inv, multistep, poly, sigmoid).
    opt(8, "lr_policy", STRING, NONE),
    opt(9, "gamma", FLOAT, NONE),
    opt(10, "power", FLOAT, NONE),
    opt(11, "momentum", FLOAT, NONE),
    opt(12, "weight_decay", FLOAT, NONE),
    opt(13, "stepsize", INT32, NONE),
    opt(14, "snapshot", INT32, I(0)),
    opt(15, "snapshot_prefix", STRING, NONE),
    opt(16, "snapshot_diff", BOOL, B(false)),
    opt(17, "solver_mode", en(&SOLVER_MODE), E("GPU")),
    opt(18, "device_id", INT32, I(0)),
    opt(19, "test_compute_loss", BOOL, B(false)),
    opt(20, "random_seed", INT64, I(-1)),
    opt(21, "train_net_param", msg(&NET_PARAMETER), NONE),
    rep(22, "test_net_param", msg(&NET_PARAMETER)),
    opt(23, "debug_info", BOOL, B(false)),
    opt(24, "net", STRING, NONE),
    opt(25, "net_param", msg(&NET_PARAMETER), NONE),
    opt(26, "train_state", msg(&NET_STATE), NONE),
    rep(27, "test_state", msg(&NET_STATE)),
    opt(28, "snapshot_after_train", BOOL, B(true)),
    opt(29, "regularization_type", STRING, S("L2")),
    opt(30, "solver_type", en(&SOLVER_TYPE), E("SGD")),
    opt(31, "delta", FLOAT, F(1e-8)),
    opt(32, "test_initialization", BOOL, B(true)),
    opt(33, "average_loss", INT32, I(1)),
    rep(34, "stepvalue", INT32),
    opt(35, "clip_gradients", FLOAT, F(-1.0)),
    opt(36, "iter_size", INT32, I(1)),
    opt(37, "snapshot_format", en(&SNAPSHOT_FORMAT), E("BINARYPROTO")),
    opt(38, "rms_decay", FLOAT, F(0.99)),
    opt(39, "momentum2", FLOAT, F(0.999)),
    opt(40, "type", STRING, S("SGD")),
    opt(41, "layer_wise_reduce", BOOL, B(true)),
    rep(42, "weights", STRING),
]);

message!(SOLVER_STATE = "SolverState" [
    opt(1, "iter", INT32, NONE),
    opt(2, "learned_net", STRING, NONE),
    rep(3, "history", msg(&BLOB_PROTO)),
    opt(4, "current_step", INT32, I(0)),
]);
