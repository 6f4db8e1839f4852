//! `train --distributed`: one training run over the processes of an MPI job
//! (`mpirun -np N backprop train --distributed …`).
//!
//! The rules of the run (sharding, gradient buckets, batch norm, who evaluates) live in
//! [`backprop_train::parallel`]; this module only joins the MPI job and offers its
//! collectives (OpenMPI or any MPI-3 library, through the `mpi` crate) as a
//! [`Collective`]. It is compiled with the `mpi` cargo feature; without it,
//! `--distributed` is refused with a message saying how to build it.
//!
//! Failure: MPI's default error handler aborts the job on a communication error, and
//! `mpirun` ends every rank within seconds when one dies or is killed, naming it. An error
//! on one rank (a bad flag, a missing file) is printed with its rank and aborts the whole
//! job, so no rank waits forever for a peer that has left.

use anyhow::Result;

#[cfg(feature = "mpi")]
pub use with_mpi::Peers;

#[cfg(feature = "mpi")]
mod with_mpi {
    use std::process::ExitCode;

    use anyhow::{anyhow, Result};
    use backprop_train::Collective;
    use mpi::collective::SystemOperation;
    use mpi::environment::Universe;
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::*;

    /// This process's place in the MPI job.
    pub struct Peers {
        // dropped last: finalises MPI
        _universe: Universe,
        rank: usize,
        size: usize,
    }

    /// Broadcasts go in pieces of at most this many bytes (MPI counts are `int`).
    const PIECE: usize = 1 << 30;

    /// The job's world communicator (a handle MPI predefines, fetched at each call, so
    /// this is `Send` as a trainer must be; the calls come from the trainer's thread).
    struct World;

    impl Collective for World {
        fn rank(&self) -> usize {
            SimpleCommunicator::world().rank() as usize
        }
        fn size(&self) -> usize {
            SimpleCommunicator::world().size() as usize
        }
        fn all_reduce_sum(&self, buf: &mut [f32]) {
            let send = buf.to_vec();
            SimpleCommunicator::world().all_reduce_into(&send[..], buf, SystemOperation::sum());
        }
        fn all_reduce_sum_f64(&self, buf: &mut [f64]) {
            let send = buf.to_vec();
            SimpleCommunicator::world().all_reduce_into(&send[..], buf, SystemOperation::sum());
        }
        fn broadcast_bytes(&self, bytes: &mut Vec<u8>) {
            let world = SimpleCommunicator::world();
            let root = world.process_at_rank(0);
            let mut len = bytes.len() as u64;
            root.broadcast_into(&mut len);
            bytes.resize(len as usize, 0);
            for piece in bytes.chunks_mut(PIECE) {
                root.broadcast_into(piece);
            }
        }
    }

    impl Peers {
        /// Joins the MPI job this process was started in.
        pub fn join() -> Result<Peers> {
            let universe = mpi::initialize()
                .ok_or_else(|| anyhow!("--distributed: MPI could not be initialised"))?;
            let world = universe.world();
            Ok(Peers {
                rank: world.rank() as usize,
                size: world.size() as usize,
                _universe: universe,
            })
        }

        /// This process's rank (0 prints, evaluates and writes files).
        pub fn rank(&self) -> usize {
            self.rank
        }

        /// The number of processes.
        pub fn size(&self) -> usize {
            self.size
        }

        /// The job's collectives, for [`backprop_train::Trainer::distribute`].
        pub fn collective(&self) -> Box<dyn Collective> {
            Box::new(World)
        }

        /// A rank's result: an error is printed with the rank and ends the whole job
        /// (`MPI_Abort`), since its peers would otherwise wait for it forever.
        pub fn finish(&self, result: Result<ExitCode>) -> Result<ExitCode> {
            match result {
                Ok(code) => Ok(code),
                Err(e) => {
                    eprintln!("error: rank {} of {}: {e:#}", self.rank, self.size);
                    SimpleCommunicator::world().abort(1)
                }
            }
        }
    }
}

/// Without the `mpi` feature there are no peers: this type has no values.
#[cfg(not(feature = "mpi"))]
pub enum Peers {}

#[cfg(not(feature = "mpi"))]
impl Peers {
    fn join() -> Result<Peers> {
        anyhow::bail!(
            "--distributed: this backprop was built without MPI; build it with `cargo build --release --features mpi` (it needs an MPI library, e.g. Debian's openmpi-bin, libopenmpi-dev and libclang-dev) and start it with mpirun"
        )
    }
    pub fn rank(&self) -> usize {
        match *self {}
    }
    pub fn size(&self) -> usize {
        match *self {}
    }
    pub fn collective(&self) -> Box<dyn backprop_train::Collective> {
        match *self {}
    }
    pub fn finish(&self, _: Result<std::process::ExitCode>) -> Result<std::process::ExitCode> {
        match *self {}
    }
}

/// The MPI job's peers for `--distributed`, or none for a single-process run. Without
/// `--threads` (or `RAYON_NUM_THREADS`), the ranks on one machine share its cores.
///
/// # Errors
/// If `--distributed` is given to a build without MPI, or MPI fails to start.
pub fn join(distributed: bool, threads: Option<usize>) -> Result<Option<Peers>> {
    if !distributed {
        return Ok(None);
    }
    let peers = Peers::join()?;
    if threads.is_none() && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads((cores / local_ranks()).max(1))
            .stack_size(crate::commands::POOL_STACK)
            .build_global();
    }
    Ok(Some(peers))
}

/// How many ranks the MPI launcher started on this machine (OpenMPI's or MPICH's variable;
/// 1 if neither is set).
fn local_ranks() -> usize {
    ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1)
}
