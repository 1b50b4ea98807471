use oneloop_runtime::Loop;
use std::cell::RefCell;
use std::rc::Rc;

#[test]
fn smoke_order() {
    let mut lp = Loop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    lp.set_timeout(0, move |_| l.borrow_mut().push("timeout"));
    let l = log.clone();
    lp.set_immediate(move |_| l.borrow_mut().push("immediate"));
    let l = log.clone();
    lp.next_tick(move |_| l.borrow_mut().push("tick"));
    let l = log.clone();
    lp.queue_microtask(move |_| l.borrow_mut().push("micro"));
    let l = log.clone();
    lp.queue_work(
        || 6 * 7,
        move |_, r| {
            assert_eq!(r, Ok(42));
            l.borrow_mut().push("work")
        },
    )
    .unwrap();
    lp.run().unwrap();
    println!("{:?}", log.borrow());
    assert_eq!(log.borrow().len(), 5);
}
