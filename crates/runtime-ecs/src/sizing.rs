//! Fargate task sizes for a lab's memory limit.
//!
//! Rule: the `jupyter` container's hard memory limit is the lab's
//! `memory_bytes` rounded up to whole MiB. The task's memory is the smallest
//! size Fargate accepts for the task's CPU that holds that plus the memory of
//! the task's other containers (the agent's 512 MiB in the CDK definition),
//! rounded up to that CPU's step. When the task's CPU cannot have that much
//! memory, the CPU is raised to the smallest that can (Fargate ties memory
//! ranges to CPU); never lowered. Above Fargate's largest task (16 vCPU,
//! 120 GiB) the limit cannot be met and `start` refuses.

/// Fargate's CPU units and the memory (MiB) each allows: `(cpu, min, max, step)`.
const FARGATE: [(u32, u64, u64, u64); 7] = [
    (256, 512, 2048, 512),
    (512, 1024, 4096, 1024),
    (1024, 2048, 8192, 1024),
    (2048, 4096, 16384, 1024),
    (4096, 8192, 30720, 1024),
    (8192, 16384, 61440, 4096),
    (16384, 32768, 122_880, 8192),
];

/// The task size for a Jupyter container of `memory_bytes` beside others
/// needing `others_mib`, starting from the task definition's `cpu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskSize {
    /// CPU units of the task.
    pub cpu: u32,
    /// Memory of the task, MiB.
    pub task_mib: u64,
    /// Hard limit of the `jupyter` container, MiB.
    pub jupyter_mib: u64,
}

/// See the module docs; `None` when no Fargate size holds it.
pub fn task_size(cpu: u32, memory_bytes: u64, others_mib: u64) -> Option<TaskSize> {
    let jupyter_mib = memory_bytes.div_ceil(1024 * 1024).max(6);
    let needed = jupyter_mib.checked_add(others_mib)?;
    FARGATE
        .iter()
        .filter(|(c, ..)| *c >= cpu)
        .find(|(_, _, max, _)| *max >= needed)
        .map(|&(c, min, _, step)| TaskSize {
            cpu: c,
            task_mib: needed.div_ceil(step).saturating_mul(step).max(min),
            jupyter_mib,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1024 * 1024 * 1024;

    #[test]
    fn a_lab_limit_is_rounded_up_to_the_cpus_next_memory_step() {
        // 3 GiB for Jupyter + 512 MiB agent = 3.5 GiB -> 4 GiB at 1 vCPU.
        let s = task_size(1024, 3 * GIB, 512).unwrap();
        assert_eq!(
            s,
            TaskSize {
                cpu: 1024,
                task_mib: 4096,
                jupyter_mib: 3072
            }
        );
    }

    #[test]
    fn a_small_limit_gets_the_cpus_minimum_memory() {
        let s = task_size(1024, 256 * 1024 * 1024, 512).unwrap();
        assert_eq!((s.cpu, s.task_mib, s.jupyter_mib), (1024, 2048, 256));
    }

    #[test]
    fn a_limit_above_what_the_cpu_allows_raises_the_cpu() {
        // 12 GiB + 512 MiB does not fit 1 vCPU (max 8 GiB): 2 vCPU, 13 GiB.
        let s = task_size(1024, 12 * GIB, 512).unwrap();
        assert_eq!((s.cpu, s.task_mib), (2048, 13 * 1024));
        // 40 GiB: 8 vCPU in 4 GiB steps.
        let s = task_size(1024, 40 * GIB, 512).unwrap();
        assert_eq!((s.cpu, s.task_mib), (8192, 44 * 1024));
    }

    #[test]
    fn bytes_that_are_not_whole_mib_round_up() {
        let s = task_size(1024, 3 * GIB + 1, 0).unwrap();
        assert_eq!(s.jupyter_mib, 3073);
    }

    #[test]
    fn a_limit_beyond_fargates_largest_task_is_refused() {
        assert_eq!(task_size(1024, 121 * GIB, 512), None);
        assert_eq!(task_size(1024, u64::MAX, 512), None);
    }
}
