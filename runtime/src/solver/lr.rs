//! Caffe's learning-rate policies (`SGDSolver::GetLearningRate`), formula
//! for formula. The rate of iteration `iter` is computed before that
//! iteration's update, with `iter` counting from 0.

use lvc_compiler::schema::solver::{LrPolicy, SolverDef};

/// The schedule's parameters. Caffe reads them from float proto fields, so
/// they are rounded to f32 on the way in.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    pub base_lr: f64,
    pub policy: LrPolicy,
    pub gamma: f64,
    pub power: f64,
    pub stepsize: i64,
    pub stepvalue: Vec<i64>,
    pub max_iter: i64,
    /// `multistep`'s position in `stepvalue`; Caffe keeps it as solver state
    /// (`SolverState.current_step`) and advances it at most once per call.
    pub(super) current_step: usize,
}

/// A float proto field as Caffe holds it.
pub(crate) fn proto_float(value: f64) -> f64 {
    value as f32 as f64
}

impl LrSchedule {
    pub fn new(base_lr: f64, policy: LrPolicy) -> Self {
        LrSchedule {
            base_lr: proto_float(base_lr),
            policy,
            gamma: 0.0,
            power: 0.0,
            stepsize: 0,
            stepvalue: Vec::new(),
            max_iter: 0,
            current_step: 0,
        }
    }

    pub fn from_def(def: &SolverDef) -> Self {
        LrSchedule {
            gamma: proto_float(def.gamma),
            power: proto_float(def.power),
            stepsize: def.stepsize,
            stepvalue: def.stepvalue.clone(),
            max_iter: def.max_iter,
            ..LrSchedule::new(def.base_lr, def.lr_policy)
        }
    }

    /// Puts `multistep`'s position where calling [`rate`](Self::rate) for
    /// iterations `0..iter` would have left it. A resumed run whose schedule
    /// changed (other `stepvalue`s, another policy) then continues on the
    /// new schedule, where a restored position would hold the old one's
    /// step (Caffe's `Restore` keeps `current_step` whatever the solver
    /// now says). The other policies keep no position: 0, as they leave it.
    pub fn seek(&mut self, iter: i64) {
        self.current_step = 0;
        if self.policy != LrPolicy::Multistep {
            return;
        }
        // rate()'s rule, call by call: at most one step per iteration, so a
        // repeated stepvalue is passed one iteration late, as in Caffe.
        for i in 0..iter {
            match self.stepvalue.get(self.current_step) {
                Some(&v) if i >= v => self.current_step += 1,
                Some(_) => {}
                None => break,
            }
        }
    }

    /// The rate for iteration `iter`. Call once per iteration, in order:
    /// `multistep` advances its step as Caffe does (one step per call).
    pub fn rate(&mut self, iter: i64) -> f64 {
        let iter_f = iter as f64;
        match self.policy {
            LrPolicy::Fixed => self.base_lr,
            LrPolicy::Step => {
                // Caffe: `current_step_ = iter_ / stepsize` (integer division;
                // load_solver rejects stepsize ≤ 0 for this policy).
                let step = if self.stepsize > 0 { iter / self.stepsize } else { 0 };
                self.base_lr * self.gamma.powf(step as f64)
            }
            LrPolicy::Exp => self.base_lr * self.gamma.powf(iter_f),
            LrPolicy::Inv => self.base_lr * (1.0 + self.gamma * iter_f).powf(-self.power),
            LrPolicy::Multistep => {
                if self.stepvalue.get(self.current_step).is_some_and(|&v| iter >= v) {
                    self.current_step += 1;
                }
                self.base_lr * self.gamma.powf(self.current_step as f64)
            }
            LrPolicy::Poly => {
                let progress = if self.max_iter > 0 { iter_f / self.max_iter as f64 } else { 0.0 };
                self.base_lr * (1.0 - progress).powf(self.power)
            }
            LrPolicy::Sigmoid => {
                self.base_lr * (1.0 / (1.0 + (-self.gamma * (iter_f - self.stepsize as f64)).exp()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(policy: LrPolicy) -> LrSchedule {
        LrSchedule {
            gamma: 0.5,
            power: 2.0,
            stepsize: 10,
            stepvalue: vec![3, 5, 5],
            max_iter: 20,
            ..LrSchedule::new(0.1, policy)
        }
    }

    fn rates(policy: LrPolicy, iters: std::ops::Range<i64>) -> Vec<f64> {
        let mut s = schedule(policy);
        iters.map(|i| s.rate(i)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1e-30)
    }

    #[test]
    fn base_lr_is_a_float_field() {
        assert_eq!(LrSchedule::new(0.001, LrPolicy::Fixed).base_lr, 0.001f32 as f64);
    }

    #[test]
    fn fixed_step_exp_inv_poly_sigmoid_follow_caffe() {
        let b = 0.1f32 as f64;
        assert!(rates(LrPolicy::Fixed, 0..5).iter().all(|&r| r == b));
        let step = rates(LrPolicy::Step, 0..25);
        assert_eq!((step[9], step[10], step[19], step[20]), (b, b * 0.5, b * 0.5, b * 0.25));
        assert!(close(rates(LrPolicy::Exp, 3..4)[0], b * 0.125));
        assert!(close(rates(LrPolicy::Inv, 2..3)[0], b * 2.0f64.powf(-2.0)));
        let poly = rates(LrPolicy::Poly, 0..21);
        assert!(close(poly[5], b * 0.75f64.powi(2)));
        assert_eq!(poly[20], 0.0);
        let sigmoid = rates(LrPolicy::Sigmoid, 10..11)[0];
        assert!(close(sigmoid, b * 0.5), "at iter == stepsize the sigmoid is half way");
    }

    #[test]
    fn seek_leaves_multistep_where_the_calls_would_have() {
        for iter in 0..10 {
            let mut called = schedule(LrPolicy::Multistep);
            (0..iter).for_each(|i| {
                called.rate(i);
            });
            let mut sought = LrSchedule { current_step: 7, ..schedule(LrPolicy::Multistep) };
            sought.seek(iter);
            assert_eq!(sought.current_step, called.current_step, "iteration {iter}");
            assert_eq!(sought.rate(iter), called.rate(iter));
        }
        let mut step = LrSchedule { current_step: 2, ..schedule(LrPolicy::Step) };
        step.seek(15);
        assert_eq!(step.current_step, 0, "step computes its step from the iteration");
    }

    #[test]
    fn multistep_advances_one_step_per_call_like_caffe() {
        // stepvalue 3, 5, 5: the duplicate 5 is passed one iteration late.
        let b = 0.1f32 as f64;
        let r = rates(LrPolicy::Multistep, 0..8);
        assert_eq!(r[..3], [b; 3]);
        assert_eq!(r[3..5], [b * 0.5; 2]);
        assert_eq!(r[5], b * 0.25);
        assert_eq!(r[6..], [b * 0.125; 2]);
    }
}
